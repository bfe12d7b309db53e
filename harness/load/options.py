"""The harness's options on Locust's own command line, and the settings built from them.

`locust -f locustfile.py --headless -u 10 -r 5 -t 1m --target ws://... --scenario plain:3,barge_in:1`
works because these options are added through `events.init_command_line_parser`. The same
names are used by `harness run`, which passes them through to Locust.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.client.spec import AUTH_SCHEMES
from harness.protocol import AudioFormat, Dialect


class LoadSettingsError(ValueError):
    user_error = True


def add_harness_options(parser: Any) -> None:
    group = parser.add_argument_group("realtime harness")
    group.add_argument("--target", default=os.environ.get("HARNESS_TARGET", ""),
                       help="Realtime WebSocket URL (ws:// or wss://); env HARNESS_TARGET")
    group.add_argument("--dialect", default="ga", help="ga or beta")
    group.add_argument("--format", dest="audio_format", default="pcm16", help="pcm16, g711_ulaw or g711_alaw")
    group.add_argument("--corpus", default="corpora/default", help="corpus directory (manifest.json)")
    group.add_argument("--scenario", default="plain:1", help="weighted mix, e.g. plain:3,barge_in:1")
    group.add_argument("--scenario-params", default="{}",
                       help='JSON per scenario, e.g. \'{"barge_in": {"barge_offset_ms": 400}}\'')
    group.add_argument("--turns", type=int, default=3, help="turns per session")
    group.add_argument("--chunk-ms", type=float, default=20.0, help="audio per append, ms")
    group.add_argument("--rtf", type=float, default=1.0, help="real-time factor of the upload (1 = real time)")
    group.add_argument("--turn-timeout", type=float, default=15.0, help="seconds a turn may wait for its answer")
    group.add_argument("--lateness-limit-ms", type=float, default=20.0,
                       help="a turn with an append later than this is invalid_pacing")
    group.add_argument("--pacing-limit-ms", type=float, default=5.0, help="pacing gate: p99 send lateness limit")
    group.add_argument("--slo", action="append", default=None,
                       help="SLO expression (metric:p95<1200, incident_rate:any<0.05) or a TOML file; repeatable")
    group.add_argument("--out", default="", help="run directory (default reports/<RUN_ID>)")
    group.add_argument("--run-id", default="", help="run id (default: UTC time + random)")
    group.add_argument("--auth", default="bearer", help="bearer (OpenAI, Entra), api-key (Azure key) or none")
    group.add_argument("--api-key-env", default="",
                       help="environment variable holding the API key (default OPENAI_API_KEY; required to be set "
                            "when given, and for any target off this machine unless --auth none)")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def parse_mix(text: str) -> dict[str, float]:
    """`plain:3,barge_in:1` -> {"plain": 3.0, "barge_in": 1.0}; names checked against the scenarios."""
    from harness.scenarios import SCENARIOS

    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(":")
        name = name.strip()
        if name not in SCENARIOS:
            raise LoadSettingsError(f"--scenario {text!r}: unknown scenario {name!r}; "
                                    f"choose from {', '.join(SCENARIOS)}")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise LoadSettingsError(f"--scenario {text!r}: weight of {name!r} is not a number") from None
        if value <= 0:
            raise LoadSettingsError(f"--scenario {text!r}: weight of {name!r} must be > 0")
        mix[name] = value
    if not mix:
        raise LoadSettingsError("--scenario is empty; give e.g. plain:3,barge_in:1")
    return mix


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


def _check_api_key(target: str, auth: str, api_key_env: str) -> str:
    """The variable holding the key; an error before anything connects when the key is missing.

    A key is required when the variable was named explicitly, or the target is off this machine
    (OpenAI, Azure, a gateway) and `--auth` is not `none`. A loopback target (the simulator, a
    local gateway) may run without one. Only the variable's name is ever shown, never its value.
    """
    from harness.trace import redact_url

    name = api_key_env or DEFAULT_API_KEY_ENV
    if auth not in AUTH_SCHEMES:
        raise LoadSettingsError(f"--auth {auth!r}: use one of {', '.join(AUTH_SCHEMES)}")
    if auth == "none" or os.environ.get(name):
        return name
    host = urlsplit(target).hostname or ""
    if api_key_env or host not in LOOPBACK_HOSTS:
        raise LoadSettingsError(f"no API key: the environment variable {name} is not set and {redact_url(target)} "
                                f"needs one; export {name}=... (or pass --api-key-env NAME, or --auth none for a "
                                "target without keys)")
    return name


@dataclass
class LoadSettings:
    target: str
    dialect: str
    fmt: str
    corpus: str
    mix: dict[str, float]
    scenario_params: dict[str, dict[str, Any]]
    turns: int
    chunk_ms: float
    rtf: float
    turn_timeout_s: float
    lateness_limit_ms: float
    pacing_limit_ms: float
    slos: list[str]
    out: Path
    run_id: str
    auth: str
    api_key_env: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: Any) -> "LoadSettings":
        target = options.target or (options.host if str(getattr(options, "host", "") or "").startswith("ws") else "")
        if not target:
            raise LoadSettingsError("no target: pass --target ws://HOST:PORT/v1/realtime (or use `harness run`, "
                                    "which starts the embedded simulator)")
        if not re.match(r"^wss?://[^/\s]+", target):
            raise LoadSettingsError(f"--target {target!r} is not a WebSocket URL; use ws://HOST:PORT/PATH or wss://...")
        if options.dialect not in {d.value for d in Dialect}:
            raise LoadSettingsError(f"--dialect {options.dialect!r}: use ga or beta")
        if options.audio_format not in {f.value for f in AudioFormat}:
            raise LoadSettingsError(f"--format {options.audio_format!r}: use pcm16, g711_ulaw or g711_alaw")
        try:
            params = json.loads(options.scenario_params or "{}")
        except json.JSONDecodeError as exc:
            raise LoadSettingsError(f"--scenario-params is not valid JSON ({exc.msg}); "
                                    'give e.g. \'{"barge_in": {"barge_offset_ms": 400}}\'') from None
        if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
            raise LoadSettingsError("--scenario-params must map scenario names to objects of parameters")
        if not Path(options.corpus, "manifest.json").is_file():
            raise LoadSettingsError(f"--corpus {options.corpus}: no manifest.json there; "
                                    "point it at a corpus folder (e.g. corpora/default)")
        api_key_env = _check_api_key(target, options.auth, options.api_key_env)
        run_id = options.run_id or os.environ.get("HARNESS_RUN_ID") or new_run_id()
        out = Path(options.out or os.environ.get("HARNESS_OUT") or Path("reports") / run_id)
        return cls(target=target, dialect=options.dialect, fmt=options.audio_format, corpus=options.corpus,
                   mix=parse_mix(options.scenario), scenario_params=params, turns=options.turns,
                   chunk_ms=options.chunk_ms, rtf=options.rtf, turn_timeout_s=options.turn_timeout,
                   lateness_limit_ms=options.lateness_limit_ms, pacing_limit_ms=options.pacing_limit_ms,
                   slos=list(options.slo or []), out=out, run_id=run_id, auth=options.auth,
                   api_key_env=api_key_env)
