"""`start_in_process`: the simulator as a child process (`harness sim --port 0`), for load runs.

A simulator in a thread shares the GIL with its caller, so under load its work delays the
caller's pacing (and the other way round). A child process has its own interpreter: the caller's
clock stays clean. The child's trace goes to a JSONL file (`trace_path`), read with `read_records`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.sim.config import SimConfig, SimConfigError

READY_PREFIX = "harness sim: listening on "


class SimProcess:
    """A running `harness sim` child: `.url`, `.trace_path`, `.read_records()`, `.stop()`."""

    def __init__(self, cfg: SimConfig | None, host: str, port: int, workdir: Path) -> None:
        cfg = cfg or SimConfig()
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
        # drain stderr (one log line per connection) so the child never blocks on a full pipe
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def read_records(self) -> list[dict[str, Any]]:
        """The server trace written so far (flushed on stop; kept after the context ends)."""
        if self._final is not None:
            return self._final
        if not self.trace_path.exists():
            return []
        records = []
        for line in self.trace_path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
        return records

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._drain.join(2)
        self._final = self.read_records()
        return int(self.proc.returncode)


@contextlib.contextmanager
def start_in_process(cfg: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> Iterator[SimProcess]:
    """Run the simulator in a child process; yields an object with `.url` and `.read_records()`."""
    with tempfile.TemporaryDirectory(prefix="harness-sim-") as workdir:
        sim = SimProcess(cfg, host, port, Path(workdir))
        try:
            yield sim
        finally:
            sim.stop()
