"""The simulator's latency model: one seeded delay distribution per stage of a turn.

A stage's delay is added to the moment that triggers it (target = trigger + delay), so the
server trace can show exactly the delay that was injected. Distributions are written
`fixed:300`, `normal:300,50` (mean, sd), `lognormal:300,0.4` (median, sigma) or
`uniform:200,400` (low, high); all values are milliseconds except the lognormal sigma.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

# stage -> what triggers it
STAGES: dict[str, str] = {
    "speech_start": "arrival of the audio in which speech started -> speech_started sent",
    "vad_decision": "arrival of the audio holding speech end + silence_duration_ms -> speech_stopped sent",
    "commit": "speech_stopped sent (or commit received) -> committed sent",
    "response_start": "committed sent (or response.create received) -> response.created sent",
    "first_audio": "response.created sent -> first audio (or function-call) delta sent",
    "delta_gap": "previous delta sent -> next delta sent",
    "cancel_ack": "response.cancel received (or barge-in decided) -> response.done cancelled sent",
}

DEFAULTS: dict[str, str] = {
    "speech_start": "fixed:0",
    "vad_decision": "fixed:0",
    "commit": "fixed:10",
    "response_start": "fixed:20",
    "first_audio": "fixed:250",
    "delta_gap": "fixed:25",
    "cancel_ack": "fixed:10",
}

KINDS = ("fixed", "normal", "lognormal", "uniform")


class SimConfigError(ValueError):
    """A bad simulator setting (flag or TOML value); the message names it and the fix."""

    user_error = True


@dataclass(frozen=True)
class Distribution:
    """One delay distribution; `sample_ms` never returns a negative delay."""

    kind: str
    a: float
    b: float = 0.0

    @classmethod
    def parse(cls, text: str | int | float, stage: str = "?") -> "Distribution":
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            return cls._checked("fixed", [float(text)], stage, str(text))
        spec = str(text).strip()
        kind, _, params = spec.partition(":")
        kind = kind.strip().lower()
        if kind not in KINDS:
            raise SimConfigError(
                f"latency {stage}={spec!r}: unknown distribution {kind!r}; "
                "use fixed:MS, normal:MEAN,SD, lognormal:MEDIAN,SIGMA or uniform:LOW,HIGH"
            )
        try:
            values = [float(v) for v in params.split(",") if v.strip()]
        except ValueError:
            raise SimConfigError(f"latency {stage}={spec!r}: parameters must be numbers, e.g. normal:300,50") from None
        return cls._checked(kind, values, stage, spec)

    @classmethod
    def _checked(cls, kind: str, values: list[float], stage: str, spec: str) -> "Distribution":
        wanted = 1 if kind == "fixed" else 2
        if len(values) != wanted or any(math.isnan(v) or math.isinf(v) for v in values):
            raise SimConfigError(f"latency {stage}={spec!r}: {kind} takes {wanted} finite number(s)")
        if kind == "fixed" and values[0] < 0:
            raise SimConfigError(f"latency {stage}={spec!r}: a delay cannot be negative")
        if kind in ("normal", "lognormal") and (values[0] < 0 or values[1] < 0):
            raise SimConfigError(f"latency {stage}={spec!r}: centre and spread must be >= 0")
        if kind == "uniform" and not 0 <= values[0] <= values[1]:
            raise SimConfigError(f"latency {stage}={spec!r}: uniform needs 0 <= LOW <= HIGH")
        return cls(kind, values[0], values[1] if len(values) > 1 else 0.0)

    def sample_ms(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "normal":
            return max(0.0, rng.gauss(self.a, self.b))
        if self.kind == "lognormal":
            return self.a * math.exp(rng.gauss(0.0, self.b)) if self.a > 0 else 0.0
        return rng.uniform(self.a, self.b)

    def __str__(self) -> str:
        if self.kind == "fixed":
            return f"fixed:{self.a:g}"
        return f"{self.kind}:{self.a:g},{self.b:g}"


def _default_stages() -> dict[str, Distribution]:
    return {stage: Distribution.parse(spec, stage) for stage, spec in DEFAULTS.items()}


@dataclass(frozen=True)
class LatencyModel:
    """Per-stage distributions. `sampler(session_index)` gives an independent seeded stream."""

    stages: dict[str, Distribution] = field(default_factory=_default_stages)

    def with_specs(self, specs: dict[str, str | int | float]) -> "LatencyModel":
        """A copy with some stages replaced, e.g. {"first_audio": "fixed:300"}."""
        stages = dict(self.stages)
        for stage, spec in specs.items():
            if stage not in STAGES:
                raise SimConfigError(f"latency stage {stage!r} is unknown; stages are {', '.join(STAGES)}")
            stages[stage] = Distribution.parse(spec, stage)
        return LatencyModel(stages)

    def sampler(self, seed: int, session_index: int) -> "LatencySampler":
        return LatencySampler(self, random.Random(f"{seed}:latency:{session_index}"))

    def describe(self) -> dict[str, str]:
        return {stage: str(dist) for stage, dist in self.stages.items()}


class LatencySampler:
    """Draws delays for one session; each session has its own stream so sessions do not perturb each other."""

    def __init__(self, model: LatencyModel, rng: random.Random) -> None:
        self._model = model
        self._rng = rng

    def delay_ns(self, stage: str) -> int:
        return int(round(self._model.stages[stage].sample_ms(self._rng) * 1_000_000))


def parse_latency_flag(text: str) -> tuple[str, str]:
    """`first_audio=fixed:300` -> ("first_audio", "fixed:300")."""
    stage, sep, spec = text.partition("=")
    if not sep or not spec.strip():
        raise SimConfigError(f"--latency {text!r}: write STAGE=DIST, e.g. --latency first_audio=fixed:300")
    return stage.strip(), spec.strip()
