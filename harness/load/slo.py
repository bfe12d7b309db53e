"""SLO gates: parse expressions or a TOML file, evaluate them on the exact turn records.

Expressions:
    METRIC:STAT<VALUE          ttfa_ms:p95<1200, vad_commit_ms:p50<=400, barge_in_ms:max<800
    incident_rate:CAUSE<VALUE  incident_rate:false_barge_in<0.01 (CAUSE `any` = all causes)
    timeout_rate<VALUE, error_rate<VALUE
    vad_early_rate<VALUE       also vad_late_rate, vad_missed_rate, vad_ok_rate: over the VAD turns
                               that ran to their end
STAT is p50, p90, p95, p99, max or count; the operator is <, <=, >, >=. A TOML file holds
`slo = ["ttfa_ms:p95<1200", ...]`. The pacing gate (p99 send lateness under the limit) is
always evaluated, as its own entry.
"""

from __future__ import annotations

import operator
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.metrics import CAUSES, METRICS, VAD_VERDICTS


class SloError(ValueError):
    user_error = True


OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
}
STATS = ("p50", "p90", "p95", "p99", "max", "count")
VAD_RATES = {f"vad_{verdict}_rate": verdict for verdict in VAD_VERDICTS}
_EXPR = re.compile(r"^\s*([a-z_0-9]+)(?::([a-z_0-9]+))?\s*(<=|>=|<|>)\s*([0-9.eE+-]+)\s*$")


@dataclass(frozen=True)
class Slo:
    expr: str
    metric: str
    stat: str | None
    op: str
    threshold: float

    def holds(self, value: float | None) -> bool:
        return value is not None and OPERATORS[self.op](value, self.threshold)


def parse_slo(expr: str) -> Slo:
    match = _EXPR.match(expr)
    if not match:
        raise SloError(f"--slo {expr!r}: not an SLO; write METRIC:STAT<VALUE (e.g. ttfa_ms:p95<1200), "
                       "incident_rate:CAUSE<VALUE or timeout_rate<VALUE")
    metric, stat, op, value = match.groups()
    try:
        threshold = float(value)
    except ValueError:
        raise SloError(f"--slo {expr!r}: {value!r} is not a number") from None
    if metric in ("timeout_rate", "error_rate", *VAD_RATES):
        if stat is not None:
            raise SloError(f"--slo {expr!r}: {metric} takes no stat; write {metric}<VALUE")
    elif metric == "incident_rate":
        if stat not in (*CAUSES, "any"):
            raise SloError(f"--slo {expr!r}: unknown incident cause {stat!r}; use one of any, {', '.join(CAUSES)}")
    elif metric in METRICS:
        if stat not in STATS:
            raise SloError(f"--slo {expr!r}: unknown stat {stat!r}; use one of {', '.join(STATS)}")
    else:
        raise SloError(f"--slo {expr!r}: unknown metric {metric!r}; use one of {', '.join(METRICS)}, "
                       f"incident_rate, timeout_rate, error_rate, {', '.join(VAD_RATES)}")
    return Slo(expr.strip(), metric, stat, op, threshold)


def load_slos(items: list[str]) -> list[Slo]:
    """Each item is an expression or the path of a TOML file with `slo = [...]`."""
    slos: list[Slo] = []
    for item in items:
        if item.endswith(".toml") or Path(item).is_file():
            path = Path(item)
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise SloError(f"--slo {item}: cannot read the file ({exc.strerror})") from None
            except tomllib.TOMLDecodeError as exc:
                raise SloError(f"--slo {item}: not valid TOML ({exc}); write slo = [\"ttfa_ms:p95<1200\"]") from None
            exprs = data.get("slo")
            if not isinstance(exprs, list) or not all(isinstance(e, str) for e in exprs):
                raise SloError(f"--slo {item}: needs a list `slo = [\"ttfa_ms:p95<1200\", ...]`")
            slos.extend(parse_slo(e) for e in exprs)
        else:
            slos.append(parse_slo(item))
    return slos


def slo_value(slo: Slo, summary: dict[str, Any]) -> float | None:
    turns = summary["turns"]
    total = turns["total"]
    if slo.metric == "timeout_rate":
        return turns["timeout"] / total if total else None
    if slo.metric == "error_rate":
        return turns["error"] / total if total else None
    if slo.metric in VAD_RATES:
        return summary["vad"]["by_verdict"][VAD_RATES[slo.metric]]["rate"]
    if slo.metric == "incident_rate":
        incidents = summary["incidents"]
        return incidents["rate"] if slo.stat == "any" else incidents["by_cause"][slo.stat]["rate"]
    return summary["metrics"][slo.metric][slo.stat]


def evaluate(slos: list[Slo], summary: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for slo in slos:
        value = slo_value(slo, summary)
        results.append({"expr": slo.expr, "metric": slo.metric, "stat": slo.stat, "op": slo.op,
                         "threshold": slo.threshold, "value": value, "passed": slo.holds(value)})
    return results
