"""What one simulated caller is told to do (`SessionSpec`) and what it reports back (`SessionResult`).

A spec is plain data: Locust users, `harness replay` and the tests build one and hand it to
`harness.scenarios.run_scenario`. Credentials are never part of it: the spec names the
environment variable that holds the key, and the key is read only when the handshake headers
are built, so it can never be written into a trace header or a repro bundle.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from typing import Any

from harness.corpus import SHIPPED_CORPORA_DIR
from harness.protocol.formats import Dialect
from harness.protocol.live_session import LIVE_PATH

AUTH_SCHEMES = ("bearer", "api-key", "none")
WS_IMPLS = ("sansio", "sync")
DIALECTS = tuple(d.value for d in Dialect)


class SpecError(ValueError):
    """A session spec that cannot run; the message names the field and the fix."""

    user_error = True


@dataclass
class SessionSpec:
    url: str
    dialect: str = "ga"
    fmt: str = "pcm16"
    scenario: str = "plain"
    scenario_params: dict[str, Any] = field(default_factory=dict)
    corpus: Any = "corpora/default"       # a harness.corpus.Corpus or the directory holding one
    noise_corpus: Any = str(SHIPPED_CORPORA_DIR / "noise")   # for noisy_playback / silence; any working directory
    session_config: Any = None            # harness.protocol.SessionConfig; None: defaults for the scenario
    auth: str = "bearer"                  # "bearer" (OpenAI, Azure Entra), "api-key" (Azure key), "none"
    api_key_env: str = "OPENAI_API_KEY"
    headers: dict[str, str] = field(default_factory=dict)
    chunk_ms: float = 20.0
    rtf: float = 1.0
    turn_timeout_s: float = 15.0
    lateness_limit_ms: float = 20.0
    # A target without server VAD: "manual" commits and asks for the response itself once no commit
    # came within the silence window plus VAD_FALLBACK_MARGIN_MS after the speech end; "none" waits.
    vad_fallback: str = "manual"
    jitter_ms: float = 0.0
    connect_timeout_s: float = 10.0
    rtt_interval_s: float = 2.0           # WebSocket ping every N s for network_rtt_ms; 0 = off
    turns: int = 3
    run_id: str = "run"
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    worker: str = "w0"
    trace_dir: str | Path = "traces"
    ws_impl: str = "sansio"

    def check(self) -> None:
        """Raise SpecError for a setting that cannot work, before anything connects."""
        try:
            parts = urlsplit(self.url)
            parts.port   # raises on a port that is not a number in 0-65535
        except ValueError as exc:   # the URL is not echoed: its query may hold a key
            raise SpecError(f"the target URL is not valid ({exc}); use ws://HOST:PORT/PATH or wss://HOST/PATH") from None
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise SpecError(f"the target URL must start with ws:// or wss:// and name a host (got scheme "
                            f"{parts.scheme!r}); use ws://HOST:PORT/PATH or wss://HOST/PATH")
        if self.dialect not in DIALECTS:
            raise SpecError(f"dialect={self.dialect!r} is unknown; use one of {', '.join(DIALECTS)}")
        if self.auth not in AUTH_SCHEMES:
            raise SpecError(f"auth={self.auth!r} is unknown; use one of {', '.join(AUTH_SCHEMES)}")
        if not self.rtt_interval_s >= 0:
            raise SpecError(f"rtt_interval_s={self.rtt_interval_s} must be >= 0 (0 turns the ping off)")
        if self.ws_impl not in WS_IMPLS:
            raise SpecError(f"ws_impl={self.ws_impl!r} is unknown; use one of {', '.join(WS_IMPLS)}")
        if self.rtf <= 0:
            raise SpecError(f"rtf={self.rtf} must be > 0 (1.0 is real time)")
        if self.chunk_ms <= 0:
            raise SpecError(f"chunk_ms={self.chunk_ms} must be > 0 (20 is the usual)")
        if self.turns < 0:
            raise SpecError(f"turns={self.turns} must be >= 0")
        if self.vad_fallback not in ("manual", "none"):
            raise SpecError(f"vad_fallback={self.vad_fallback!r}: use manual or none")
        if self.turn_timeout_s <= 0:
            raise SpecError(f"turn_timeout_s={self.turn_timeout_s} must be > 0")

    def session_url(self) -> str:
        """The URL this session connects to. A Live session aimed at a Realtime path (`.../realtime`,
        as the embedded simulator's URL) or at a bare host goes to `/v1/live/sessions` on the same
        host, query kept; any other path is the target's own choice and is used as given."""
        parts = urlsplit(self.url)
        if self.dialect != "live" or not (parts.path in ("", "/") or parts.path.rstrip("/").endswith("/realtime")):
            return self.url
        return urlunsplit(parts._replace(path=LIVE_PATH))

    def trace_path(self) -> Path:
        return Path(self.trace_dir) / f"{self.worker}-{self.session_id}.jsonl"

    def handshake_headers(self) -> list[tuple[str, str]]:
        """Auth and extra headers for the upgrade request (the dialect header is added by the driver)."""
        headers: list[tuple[str, str]] = []
        key = os.environ.get(self.api_key_env, "") if self.auth != "none" else ""
        if key and self.auth == "bearer":
            headers.append(("Authorization", f"Bearer {key}"))
        elif key and self.auth == "api-key":
            headers.append(("api-key", key))
        headers.extend(self.headers.items())
        return headers

    def secret_values(self) -> list[str]:
        """Every header value that must never be recorded (keys and the extra headers)."""
        values = [value for _, value in self.handshake_headers() if value]
        key = os.environ.get(self.api_key_env, "")
        return values + ([key] if key else [])


@dataclass
class SessionResult:
    trace_path: Path
    reason: str           # the trace footer's reason: "done", "error", "stopped", "closed"
    turns: int            # turns started
    turns_ok: int = 0
    error: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)   # turn records, measured live
    lateness: dict[str, Any] = field(default_factory=dict)        # send lateness summary (10 us buckets)
    connect_failed: bool = False
    conformance: dict[str, Any] = field(default_factory=dict)      # rule -> count, side, first examples
    measure_error: str | None = None    # the live meter failed (a bug): records must come from the trace
