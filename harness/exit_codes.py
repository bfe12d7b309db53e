"""The process exit codes of every `harness` command, defined once (the README's *Exit codes*).

`harness run`, `harness finalize`, plain `locust -f locustfile.py`, `harness replay` and
`harness compare` all exit with these; `summary.json` keeps the run's as `exit_code`, and the
report titles a failed run by it. One value means one thing across commands: 1 is "the command
worked and a gate said no" (an SLO, pacing or findings gate of a run, a regression found by
`compare`, a replay that did not reproduce every time under `--expect-reproduce`).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    GATE_FAILED = 1          # an SLO, the pacing or findings gate; compare: regressed; replay: not every time
    BAD_INPUT = 2            # a bad option, SLO, corpus, URL, bundle or output folder (one line names it)
    TARGET_FAILED = 3        # no session could be started (or no replay got as far as sending audio)
    INTERNAL = 4             # the harness itself failed (Locust died before any session ran)
    SIM_OVERLOADED = 5       # the embedded simulator could not keep its latency model
    NOTHING_MEASURED = 6     # sessions ran, but no turn was ok, no audio was sent, or nothing could be heard
    INTERRUPTED = 130        # Ctrl-C before anything was written, or a second one (finish with `harness finalize`)


FAILURE_TITLES: dict[int, str] = {
    ExitCode.GATE_FAILED: "A gate failed",
    ExitCode.TARGET_FAILED: "The target failed: no session could be started",
    ExitCode.INTERNAL: "The harness itself failed",
    ExitCode.SIM_OVERLOADED: "The embedded simulator was overloaded",
    ExitCode.NOTHING_MEASURED: "The run measured nothing",
    ExitCode.INTERRUPTED: "The run was interrupted",
}
