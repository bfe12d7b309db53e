"""The scheduling policy a benchmark ran under, recorded beside its figures.

`chrt -f 10 python benchmarks/X.py ...` runs the benchmark and every process it starts (they
inherit the policy) at real-time priority: other work on a shared machine then cannot preempt
them, so lateness figures are the measured processes' own, not the neighbours'.
"""

from __future__ import annotations

import os

POLICY_NAMES = {os.SCHED_OTHER: "normal", os.SCHED_FIFO: "fifo", os.SCHED_RR: "rr"}


def scheduling() -> str:
    policy = os.sched_getscheduler(0)
    return f"{POLICY_NAMES.get(policy, str(policy))} priority {os.sched_getparam(0).sched_priority}"
