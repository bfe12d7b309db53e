"""The harness's options on Locust's own command line, and the settings built from them.

`locust -f locustfile.py --headless -u 10 -r 5 -t 1m --target ws://... --scenario plain:3,barge_in:1`
works because these options are added through `events.init_command_line_parser`. The same
names are used by `harness run`, which passes them through to Locust.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.client.spec import AUTH_SCHEMES
from harness.exit_codes import ExitCode
from harness.protocol import AudioFormat, Dialect


class LoadSettingsError(ValueError):
    user_error = True


# -t/--run-time as Locust reads it (locust.util.timespan.parse_timespan: 90, 30s, 5m, 1h30m, ...).
# Not imported from Locust: importing any part of `locust` runs gevent's monkey.patch_all() in the
# importing process, and `harness run`'s own process (which starts the simulator and forwards
# signals to the Locust child) must stay unpatched. tests/load/test_option_checks.py checks that
# this accepts and rejects exactly what Locust's function does.
_TIMESPAN = re.compile(r"(?:(?P<hours>\d+)h)?(?:(?P<minutes>\d+)m)?(?:(?P<seconds>\d+)s)?")


def parse_timespan(text: str) -> int:
    """Seconds in `text`; ValueError for anything `locust -t` would refuse."""
    if re.fullmatch(r"\d+", text or ""):   # whole seconds
        return int(text)
    match = _TIMESPAN.fullmatch(text or "")
    if not text or match is None:
        raise ValueError(f"not a time span: {text!r}")
    parts = {name: int(value) for name, value in match.groupdict().items() if value}
    return parts.get("hours", 0) * 3600 + parts.get("minutes", 0) * 60 + parts.get("seconds", 0)


# Locust's --stop-timeout for every harness run (`harness run` passes it; plain Locust's users
# raise a lower one to it): the callers end their sessions themselves within ~0.25 s of the stop,
# so turns cut by the stop are recorded `stopped`, never killed mid-record.
STOP_TIMEOUT_S = 10.0
MAX_CHUNK_MS = 1000.0
# A chunk must hold a whole number of samples in every format (24 kHz pcm16 and 8 kHz G.711): a
# multiple of 1000 / gcd(rates) ms, 0.125 ms. (AudioFormat.rate_hz is the source of the rates.)
SAMPLE_GRID_HZ = math.gcd(*(f.rate_hz for f in AudioFormat))
CHUNK_STEP_MS = 1000.0 / SAMPLE_GRID_HZ
RUN_TIME_FORMS = "30s, 5m, 1h30m (or whole seconds, 90)"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _positive(option: str, value: float | None, what: str, example: str, *, zero_ok: bool = False) -> None:
    """`value` must be a finite number > 0 (>= 0 when `zero_ok`); None: the option is not there."""
    if value is None:
        return
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise LoadSettingsError(f"{option} {_num(value)}: must be a finite {what} {'>=' if zero_ok else '>'} 0, "
                                f"e.g. {example}")


def _check_chunk_ms(chunk_ms: float) -> None:
    option = f"--chunk-ms {_num(chunk_ms)}"
    if not math.isfinite(chunk_ms) or chunk_ms <= 0:
        raise LoadSettingsError(f"{option}: must be more than 0 ms, e.g. 20")
    if chunk_ms > MAX_CHUNK_MS:
        raise LoadSettingsError(f"{option}: must be at most {MAX_CHUNK_MS:g} ms, e.g. 20")
    samples = chunk_ms * SAMPLE_GRID_HZ / 1000.0
    if abs(samples - round(samples)) > 1e-9:
        below = math.floor(samples) * CHUNK_STEP_MS
        nearest = f"{below:g} or 20" if below > 0 else "20"
        raise LoadSettingsError(f"{option}: must be a whole number of samples at {SAMPLE_GRID_HZ / 1000:g} kHz "
                                f"(a multiple of {CHUNK_STEP_MS:g} ms), e.g. {nearest}")


def _check_run_time(run_time: Any) -> None:
    """`harness run` hands on the text (`30s`); plain Locust has parsed it to seconds already (None: forever)."""
    if run_time is None:
        return
    if isinstance(run_time, str):
        try:
            seconds = parse_timespan(run_time)
        except ValueError:
            raise LoadSettingsError(f"-t/--run-time {run_time!r}: not a duration; use e.g. {RUN_TIME_FORMS}") from None
    else:
        seconds = run_time
    if seconds <= 0:  # Locust would read 0 as "run forever"
        raise LoadSettingsError(f"-t/--run-time {run_time}: must be longer than 0 s, e.g. 30s")


def check_options(options: Any) -> None:
    """Raise LoadSettingsError (one line: the option, its bad value, the fix) for the first numeric
    option out of range, before anything starts.

    Reads both `harness run`'s arguments (`users`, `run_time` as text) and Locust's parsed options
    (`num_users`, `run_time` in seconds or None); an option that is not there is not checked.
    """
    _check_chunk_ms(options.chunk_ms)
    _positive("--rtf", options.rtf, "number", "1 (real time; 2 uploads twice as fast)")
    _positive("--turn-timeout", options.turn_timeout, "number of seconds", "15")
    _positive("--lateness-limit-ms", options.lateness_limit_ms, "number of ms", "20")
    _positive("--pacing-limit-ms", options.pacing_limit_ms, "number of ms", "5", zero_ok=True)
    _positive("--rtt-interval-s", getattr(options, "rtt_interval_s", None), "number of seconds",
              "2 (0 turns the ping off)", zero_ok=True)
    if options.turns < 1:
        raise LoadSettingsError(f"--turns {options.turns}: must be at least 1 (turns per session), e.g. 3")
    users = getattr(options, "num_users", getattr(options, "users", None))
    if users is not None and users < 1:
        raise LoadSettingsError(f"-u/--users {users}: must be at least 1 (peak callers), e.g. 10")
    _positive("-r/--spawn-rate", getattr(options, "spawn_rate", None), "number of callers started per second", "5")
    _check_run_time(getattr(options, "run_time", None))
    _positive("--sim-lateness-limit-ms", getattr(options, "sim_lateness_limit_ms", None), "number of ms", "5")
    sim_processes = getattr(options, "sim_processes", None)
    if sim_processes is not None and not 1 <= sim_processes <= 64:
        raise LoadSettingsError(f"--sim-processes {sim_processes}: must be from 1 to 64 (processes serving the "
                                "embedded simulator), e.g. 2")
    from harness.load.shapes import parse_shape

    parse_shape(getattr(options, "shape", None))
    processes = getattr(options, "processes", None)
    if processes is not None and processes < 0:
        raise LoadSettingsError(f"--processes {processes}: must be 0 (one process) or more (forked Locust "
                                "workers), e.g. 2")


def _option(group: Any, *names: str, web_ui: bool = True, secret: bool = False, **kwargs: Any) -> None:
    """One option, marked the way Locust's own `LocustArgumentParser.add_argument` marks it, so
    Locust's web UI shows it (with its choices and default) and `locust --help` lists it. The group
    only titles the help; it is Locust's action attributes that put an option in the web UI.

    `choices` go to Locust's parser only (a select in the web UI; its error is one line):
    `harness run`'s argparse would print its usage first, so there LoadSettings names a bad value."""
    if not getattr(group, "for_locust", False):
        kwargs.pop("choices", None)
    action = group.add_argument(*names, **kwargs)
    action.include_in_web_ui, action.is_secret = web_ui, secret
    action.is_required, action.is_multiple = False, False


def add_harness_options(parser: Any) -> None:
    group = parser.add_argument_group("realtime harness")
    group.for_locust = hasattr(parser, "args_included_in_web_ui")   # Locust's LocustArgumentParser
    # In the web UI, Locust's own host field is the target (environment.host), so no second field.
    _option(group, "--target", default=os.environ.get("HARNESS_TARGET", ""), web_ui=False,
            help="Realtime WebSocket URL (ws:// or wss://; the web UI's host field); env HARNESS_TARGET")
    _option(group, "--dialect", default="ga", choices=tuple(d.value for d in Dialect), help="ga, beta or live (/v1/live/sessions)")
    _option(group, "--format", dest="audio_format", default="pcm16", choices=tuple(f.value for f in AudioFormat),
            help="pcm16, g711_ulaw or g711_alaw")
    _option(group, "--corpus", default="corpora/default", help="corpus directory (manifest.json)")
    _option(group, "--scenario", default="plain:1", help="weighted mix, e.g. plain:3,barge_in:1")
    _option(group, "--scenario-params", default="{}",
            help='JSON per scenario, e.g. \'{"barge_in": {"barge_offset_ms": 400}}\'')
    _option(group, "--turns", type=int, default=3, help="turns per session")
    _option(group, "--chunk-ms", type=float, default=20.0, help="audio per append, ms")
    _option(group, "--rtf", type=float, default=1.0, help="real-time factor of the upload (1 = real time)")
    _option(group, "--turn-timeout", type=float, default=15.0, help="seconds a turn may wait for its answer")
    _option(group, "--lateness-limit-ms", type=float, default=20.0,
            help="a turn with an append later than this is invalid_pacing")
    _option(group, "--pacing-limit-ms", type=float, default=5.0, help="pacing gate: p99 send lateness limit")
    _option(group, "--rtt-interval-s", type=float, default=2.0,
            help="seconds between WebSocket pings for network_rtt_ms (0 = no pings)")
    _option(group, "--vad-fallback", default="manual", choices=("manual", "none"),
            help="a target that never commits (no server VAD): manual = commit and ask for the "
                 "response after the silence window + 1.5 s, so cancel/barge-in/tools are still "
                 "measured (a no_server_vad_commit finding); none = wait for the timeout")
    _option(group, "--slo", action="append", default=None,
            help="SLO expression (metric:p95<1200, incident_rate:any<0.05) or a TOML file; repeatable "
                 "(in the web UI: several separated by ;)")
    _option(group, "--shape", default="",
            help="load shape instead of -u/-r: step:users=N,step=N,every=10s[,rate=R] or "
                 "ramp:users=N,over=60s[,from=N] (then holds until -t)")
    _option(group, "--out", default="", help="run directory (default reports/<RUN_ID>)")
    _option(group, "--run-id", default="", help="run id (default: UTC time + random)")
    _option(group, "--auth", default="bearer", choices=AUTH_SCHEMES,
            help="bearer (OpenAI, Entra), api-key (Azure key) or none")
    _option(group, "--api-key-env", default="",
            help="environment variable holding the API key (default OPENAI_API_KEY; required to be set "
                 "when given, and for any target off this machine unless --auth none); the key itself is "
                 "never an option")


def slo_list(given: Any) -> list[str]:
    """`--slo` as a list: repeated on the command line, or one text (`a; b`) from Locust's web UI form."""
    if not given:
        return []
    if isinstance(given, str):
        return [part.strip() for part in given.split(";") if part.strip()]
    return [str(part) for part in given]


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
    vad_fallback: str
    lateness_limit_ms: float
    pacing_limit_ms: float
    rtt_interval_s: float
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
            raise LoadSettingsError("no target: pass --target ws://HOST:PORT/v1/realtime (plain Locust has no "
                                    "embedded simulator: start one with `harness sim`, or use `harness run`, "
                                    "which starts it for you)")
        if not re.match(r"^wss?://[^/\s]+", target):
            raise LoadSettingsError(f"--target {target!r} is not a WebSocket URL; use ws://HOST:PORT/PATH or wss://...")
        if options.dialect not in {d.value for d in Dialect}:
            raise LoadSettingsError(f"--dialect {options.dialect!r}: use ga, beta or live")
        if options.audio_format not in {f.value for f in AudioFormat}:
            raise LoadSettingsError(f"--format {options.audio_format!r}: use pcm16, g711_ulaw or g711_alaw")
        try:
            params = json.loads(options.scenario_params or "{}")
        except json.JSONDecodeError as exc:
            raise LoadSettingsError(f"--scenario-params is not valid JSON ({exc.msg}); "
                                    'give e.g. \'{"barge_in": {"barge_offset_ms": 400}}\'') from None
        if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
            raise LoadSettingsError("--scenario-params must map scenario names to objects of parameters")
        from harness.scenarios import check_dialect, check_params

        for name in parse_mix(options.scenario):
            try:
                check_dialect(name, options.dialect)
            except ValueError as exc:   # SpecError: one line, before anything starts
                raise LoadSettingsError(f"--scenario: {exc}") from None

        for name, given in params.items():
            try:
                check_params(name, given)
            except ValueError as exc:   # SpecError: a user error, said as the option's
                raise LoadSettingsError(f"--scenario-params: {exc}") from None
        from harness.corpus.loader import CorpusError, resolve_corpus_dir

        try:   # a folder, or a shipped corpus by name (`default`, `corpora/default`) from any directory
            corpus = str(resolve_corpus_dir(options.corpus).resolve())
        except CorpusError as exc:
            raise LoadSettingsError(f"--corpus {options.corpus}: {exc}") from None
        if not Path(corpus, "manifest.json").is_file():
            raise LoadSettingsError(f"--corpus {options.corpus}: no manifest.json there; "
                                    "point it at a corpus folder (e.g. corpora/default)")
        api_key_env = _check_api_key(target, options.auth, options.api_key_env)
        run_id = options.run_id or os.environ.get("HARNESS_RUN_ID") or new_run_id()
        out = Path(options.out or os.environ.get("HARNESS_OUT") or Path("reports") / run_id)
        return cls(target=target, dialect=options.dialect, fmt=options.audio_format, corpus=corpus,
                   mix=parse_mix(options.scenario), scenario_params=params, turns=options.turns,
                   chunk_ms=options.chunk_ms, rtf=options.rtf, turn_timeout_s=options.turn_timeout,
                   vad_fallback=getattr(options, "vad_fallback", "manual"),
                   lateness_limit_ms=options.lateness_limit_ms, pacing_limit_ms=options.pacing_limit_ms,
                   rtt_interval_s=getattr(options, "rtt_interval_s", 2.0),
                   slos=slo_list(options.slo), out=out, run_id=run_id, auth=options.auth,
                   api_key_env=api_key_env)


def exit_on_bad_options(options: Any) -> None:
    """Plain Locust's check, in the `init` event, before any user spawns: a bad option, target,
    corpus folder, SLO or missing key is one line on stderr and exit code 2, not a traceback.

    `sys.exit` is what stops Locust here: its event dispatch logs and swallows an Exception but
    lets SystemExit through, so `main()` ends with code 2 before the runner starts anything.
    """
    from harness.load.slo import load_slos

    try:
        check_options(options)
        load_slos(LoadSettings.from_options(options).slos)
    except Exception as exc:  # noqa: BLE001 - only errors meant for the user are turned into the line
        if not getattr(exc, "user_error", False):
            raise
        sys.stderr.write(f"harness: error: {exc}\n")
        sys.stderr.flush()
        sys.exit(ExitCode.BAD_INPUT)
