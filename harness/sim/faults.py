"""Fault injection: which responses go wrong, how, and when, from seeded rules.

A fault is written `KIND[:key=value,...]`, e.g. `drop_socket:p=0.5`, `stall:after_deltas=3,ms=4000`,
`close:code=4000`, `incomplete:reason=content_filter`. Common keys: `p` (probability that a
response is hit, default 1), `after_deltas` (audio deltas sent before the fault fires, default 2),
`nth` (only the N-th response of a session, 1-based) and `every` (every N-th response).

Three scopes (`scope_of`): most faults fire mid-response, before delta `after_deltas`; the
`SHAPE_FAULTS` change a hit response from its start (what its audio is); the `SESSION_FAULTS` are
target behaviours of a whole session, drawn once per session (`p`; `nth`/`every` count sessions).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from harness.protocol import AudioFormat
from harness.sim.latency import SimConfigError

# kind -> (extra keys with their defaults, what it does)
FAULT_KINDS: dict[str, tuple[dict[str, float | str], str]] = {
    "drop_socket": ({}, "abort the TCP connection mid-response (no close frame)"),
    "stall": ({"ms": 3000.0}, "stop sending for `ms` mid-response, then carry on"),
    "malformed_json": ({}, "send one text frame that is not JSON mid-response, then carry on"),
    "unknown_event": ({}, "send one event of a type no dialect defines mid-response, then carry on"),
    "error_event": ({"code": "server_error"}, "send an `error` event (type server_error) mid-response, then carry on"),
    "failed": ({"code": "server_error"}, "end the response with status failed (after an `error` event)"),
    "incomplete": ({"reason": "max_output_tokens"}, "end the response incomplete (max_output_tokens|content_filter)"),
    "cut_audio": ({}, "stop audio deltas early but send every .done with the full transcript"),
    "slow_audio": ({"rtf": 1.5}, "deliver audio slower than real time: each delta waits rtf x its duration"),
    "close": ({"code": 1011.0}, "close the WebSocket with `code` (1000, 1011, 4000, ...) mid-response"),
    "false_vad": ({}, "emit speech_started on silent input and cancel the response with turn_detected"),
    "error_no_done": ({"code": "server_error"},
                      "send an `error` event (type server_error) mid-response and end the response there: "
                      "no further delta and never its response.done"),
    # shape faults: the whole response
    "text_only": ({}, "answer in text only (text deltas, modality text) although the session asked for audio"),
    "silent_audio": ({"dbfs": -120.0}, "send the answer's audio as digital silence (dbfs <= -120) or as the answer "
                                       "scaled to a peak of `dbfs` (e.g. -60: below audibility)"),
    "wrong_format": ({"as": ""}, "send audio in format `as` while the session declares another (default: pcm16 "
                                 "24 kHz when G.711 is declared, g711_ulaw when pcm16 is)"),
    "leading_silence": ({"ms": 180.0}, "prepend `ms` of digital silence (whole samples) to the answer's audio"),
    # session faults: the whole session
    "refuse": ({"code": 4000.0, "reason": "session_refused"},
               "close the WebSocket with `code` and `reason` right after the handshake, before session.created"),
    "vad_without_speech": ({"ms": 70.0}, "send speech_started once `ms` of input audio has arrived, whatever was "
                                         "sent and even with turn detection off (a VAD firing on nothing)"),
    "no_server_vad": ({}, "acknowledge server VAD but never run it: no speech_started, speech_stopped or commit"),
    "ignore_session_update": ({}, "apply no session.update: session.updated echoes the session as it was created"),
}
SHAPE_FAULTS = frozenset({"text_only", "silent_audio", "wrong_format", "leading_silence"})
SESSION_FAULTS = frozenset({"refuse", "vad_without_speech", "no_server_vad", "ignore_session_update"})
WRONG_FORMATS = ("", "pcm16", "g711_ulaw", "g711_alaw")
COMMON_KEYS: dict[str, float] = {"p": 1.0, "after_deltas": 2.0, "nth": 0.0, "every": 0.0}
INCOMPLETE_REASONS = ("max_output_tokens", "content_filter")


@dataclass(frozen=True)
class Fault:
    """One configured fault; `params` holds its common and kind-specific keys with defaults filled in."""

    kind: str
    params: dict[str, float | str] = field(default_factory=dict)

    @property
    def after_deltas(self) -> int:
        return int(self.params["after_deltas"])

    def number(self, key: str) -> float:
        return float(self.params[key])

    def text(self, key: str) -> str:
        return str(self.params[key])

    @classmethod
    def parse(cls, spec: str) -> "Fault":
        kind, _, rest = spec.strip().partition(":")
        kind = kind.strip()
        if kind not in FAULT_KINDS:
            raise SimConfigError(f"--fault {spec!r}: unknown fault {kind!r}; faults are {', '.join(FAULT_KINDS)}")
        extra, _ = FAULT_KINDS[kind]
        params: dict[str, float | str] = {**COMMON_KEYS, **extra}
        for pair in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, value = pair.partition("=")
            key = key.strip()
            if not sep or key not in params:
                known = ", ".join(sorted(params))
                raise SimConfigError(f"--fault {spec!r}: bad setting {pair!r}; {kind} takes KEY=VALUE with KEY in {known}")
            default = params[key]
            try:
                params[key] = float(value) if isinstance(default, float) else value.strip()
            except ValueError:
                raise SimConfigError(f"--fault {spec!r}: {key} must be a number") from None
        fault = cls(kind, params)
        fault._check(spec)
        return fault

    def _check(self, spec: str) -> None:
        if not 0.0 <= self.number("p") <= 1.0:
            raise SimConfigError(f"--fault {spec!r}: p must be between 0 and 1")
        if self.number("after_deltas") < 0 or self.number("nth") < 0 or self.number("every") < 0:
            raise SimConfigError(f"--fault {spec!r}: after_deltas, nth and every must be >= 0")
        if self.kind == "incomplete" and self.text("reason") not in INCOMPLETE_REASONS:
            raise SimConfigError(f"--fault {spec!r}: reason must be one of {', '.join(INCOMPLETE_REASONS)}")
        if self.kind == "close" and not (1000 <= self.number("code") <= 4999):
            raise SimConfigError(f"--fault {spec!r}: code must be a WebSocket close code such as 1000, 1011 or 4000")
        if self.kind == "slow_audio" and self.number("rtf") <= 0:
            raise SimConfigError(f"--fault {spec!r}: rtf must be > 0 (1.5 = 50 % slower than real time)")
        if self.kind in ("stall", "leading_silence", "vad_without_speech") and self.number("ms") < 0:
            raise SimConfigError(f"--fault {spec!r}: ms must be >= 0")
        if self.kind == "refuse" and not (1000 <= self.number("code") <= 4999):
            raise SimConfigError(f"--fault {spec!r}: code must be a WebSocket close code such as 1008 or 4000")
        if self.kind == "refuse" and len(self.text("reason").encode()) > 123:
            raise SimConfigError(f"--fault {spec!r}: reason must fit a close frame (at most 123 bytes)")
        if self.kind == "wrong_format" and self.text("as") not in WRONG_FORMATS:
            raise SimConfigError(f"--fault {spec!r}: as must be one of pcm16, g711_ulaw, g711_alaw")
        if self.kind == "silent_audio" and self.number("dbfs") > -50:
            raise SimConfigError(f"--fault {spec!r}: dbfs must be below the audibility threshold of -50")

    def applies_to(self, response_number: int, rng: random.Random) -> bool:
        nth, every = int(self.number("nth")), int(self.number("every"))
        if nth and response_number != nth:
            return False
        if every and response_number % every:
            return False
        # always draw, so whether one fault fires does not shift the draws of the next
        return rng.random() < self.number("p")

    def describe(self) -> str:
        extra, _ = FAULT_KINDS[self.kind]
        shown = {k: v for k, v in self.params.items() if (k in extra or v != COMMON_KEYS.get(k)) and v != ""}
        body = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
        return f"{self.kind}:{body}" if body else self.kind


@dataclass(frozen=True)
class FaultPlan:
    """The configured faults; `chooser(seed, session_index)` decides per response of one session."""

    faults: tuple[Fault, ...] = ()

    @classmethod
    def parse(cls, specs: list[str]) -> "FaultPlan":
        return cls(tuple(Fault.parse(s) for s in specs))

    def chooser(self, seed: int, session_index: int) -> "FaultChooser":
        return FaultChooser(self, random.Random(f"{seed}:faults:{session_index}"))

    def session_faults(self, seed: int, session_index: int) -> dict[str, Fault]:
        """The session faults that hit session `session_index` (0-based), by kind (seeded, its own draws)."""
        rng = random.Random(f"{seed}:session-faults:{session_index}")
        hit = [f for f in self.faults if f.kind in SESSION_FAULTS and f.applies_to(session_index + 1, rng)]
        return {f.kind: f for f in hit}

    def describe(self) -> list[str]:
        return [f.describe() for f in self.faults]


class FaultChooser:
    """The faults that hit each response of one session, in response order."""

    def __init__(self, plan: FaultPlan, rng: random.Random) -> None:
        self._plan = plan
        self._rng = rng
        self._responses = 0

    def next_response(self) -> list[Fault]:
        self._responses += 1
        return [f for f in self._plan.faults if f.kind not in SESSION_FAULTS and f.applies_to(self._responses, self._rng)]


@dataclass(frozen=True)
class ResponseShape:
    """What the shape faults that hit one response make of it: text instead of audio, the format its
    audio really has, digital silence before it, its level (None: as is; <= -120: digital silence)."""

    text_only: bool = False
    wire_format: AudioFormat | None = None
    lead_ms: float = 0.0
    peak_dbfs: float | None = None

    @classmethod
    def of(cls, faults: list[Fault], declared: AudioFormat) -> "ResponseShape":
        shapes = {f.kind: f for f in faults if f.kind in SHAPE_FAULTS}
        wrong = shapes.get("wrong_format")
        wire = declared
        if wrong is not None:
            default = AudioFormat.G711_ULAW if declared is AudioFormat.PCM16 else AudioFormat.PCM16
            wire = AudioFormat(wrong.text("as")) if wrong.text("as") else default
        return cls(text_only="text_only" in shapes, wire_format=wire,
                   lead_ms=shapes["leading_silence"].number("ms") if "leading_silence" in shapes else 0.0,
                   peak_dbfs=shapes["silent_audio"].number("dbfs") if "silent_audio" in shapes else None)
