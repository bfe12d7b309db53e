"""`start_in_process`: the simulator as a child process (`harness sim --port 0`), for load runs.

A simulator in a thread shares the GIL with its caller, so under load its work delays the
caller's pacing (and the other way round). A child process has its own interpreter: the caller's
clock stays clean. The child's trace goes to a JSONL file (`trace_path`), read with `read_records`;
with `SimConfig(processes=N)` the child serves its port from N processes, one trace file each
beside `trace_path`, and `read_records` reads them together. `lateness()` is the simulator's own
lateness against its latency model (lateness.py), merged over its processes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.sim.config import SimConfig, SimConfigError
from harness.sim.lateness import merge_summaries
from harness.sim.server_trace import last_record, read_records, trace_files

READY_PREFIX = "harness sim: listening on "


class SimProcess:
    """A running `harness sim` child: `.url`, `.trace_path`, `.read_records()`, `.stop()`."""

    def __init__(self, cfg: SimConfig | None, host: str, port: int, workdir: Path, keep_records: bool = True) -> None:
        cfg = cfg or SimConfig()
        self.cfg = cfg
        self.trace_path = Path(cfg.trace_file) if cfg.trace_file else workdir / "sim-trace.jsonl"
        config_path = workdir / "sim.toml"
        config_path.write_text(cfg.with_overrides(trace_file=str(self.trace_path)).to_toml(), encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "sim", "--config", str(config_path), "--host", host, "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        first = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not first.startswith(READY_PREFIX):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            last = ((err or first).strip().splitlines() or ["no output"])[-1]
            raise SimConfigError(last.split("error: ", 1)[-1] if "error: " in last else
                                 f"the simulator process did not start: {last}")
        self.url = first[len(READY_PREFIX):]
        self.stderr_lines: list[str] = []
        self._final: list[dict[str, Any]] | None = None
        self._keep_records = keep_records
        self._lateness: dict[str, Any] | None = None
        self._stopped = False
        # drain stderr (one log line per connection) so the child never blocks on a full pipe
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def read_records(self) -> list[dict[str, Any]]:
        """The server trace written so far, of every process (flushed on stop; kept after the context ends)."""
        if self._final is not None:
            return self._final
        return read_records(self.trace_path)

    def lateness(self) -> dict[str, Any] | None:
        """The simulator's lateness summary (lateness.py), merged over its processes; None before any.

        Each process writes its cumulative summary to its trace every few seconds and when it stops;
        the last one of each file is read from the file's end.
        """
        if self._stopped:
            return self._lateness
        summaries = [r for r in (last_record(path, "lateness") for path in trace_files(self.trace_path)) if r]
        return merge_summaries(summaries) if summaries else None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._drain.join(2)
        if not self._stopped:
            self._lateness = self.lateness()
            # the trace files go with the temporary folder: keep what may be asked for after the context
            self._final = self.read_records() if self._keep_records else []
            self._stopped = True
        return int(self.proc.returncode)


@contextlib.contextmanager
def start_in_process(cfg: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0,
                     keep_records: bool = True) -> Iterator[SimProcess]:
    """Run the simulator in a child process; yields an object with `.url`, `.read_records()` and `.lateness()`.

    `keep_records=False` (harness run): the trace is not read back when the simulator stops (a long
    run's trace is large), so `read_records()` after the context gives []; `lateness()` still works.
    """
    with tempfile.TemporaryDirectory(prefix="harness-sim-") as workdir:
        sim = SimProcess(cfg, host, port, Path(workdir), keep_records=keep_records)
        try:
            yield sim
        finally:
            sim.stop()
