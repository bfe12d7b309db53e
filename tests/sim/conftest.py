"""The simulator tests, and the ones marked `processes` once more against two processes.

A test marked `@pytest.mark.processes` runs twice: against the threaded simulator of the root
`sim_factory`, and against `harness sim --processes 2` (one port, SO_REUSEPORT, one trace file per
process), started with `start_in_process`. Its `sim.trace` reads the trace files of both processes
together (each record is written as it is made, before the frame it describes), so the same
assertions hold.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PROCESSES = 2


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "processes: also run against a simulator served from two processes")


def pytest_generate_tests(metafunc: Any) -> None:
    if metafunc.definition.get_closest_marker("processes") and "sim_processes" in metafunc.fixturenames:
        metafunc.parametrize("sim_processes", [1, PROCESSES], indirect=True, ids=["thread", "2-processes"])


class FileTrace:
    """The `ServerTrace` reading interface over the trace files of every process of a simulator."""

    def __init__(self, sim: Any) -> None:
        self._sim = sim

    @property
    def records(self) -> list[dict[str, Any]]:
        return self._sim.read_records()

    def select(self, rec: str | None = None, session: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.records if (rec is None or r["rec"] == rec)
                and (session is None or r["session"] == session) and all(r.get(k) == v for k, v in match.items())]

    def sessions(self) -> list[str]:
        return [r["session"] for r in self.records if r["rec"] == "connect"]


class ProcessSim:
    """A `start_in_process` simulator shaped like the threaded one: `.url`, `.port`, `.trace`."""

    def __init__(self, sim: Any) -> None:
        self.process = sim
        self.url = sim.url
        self.trace = FileTrace(sim)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])


@pytest.fixture
def process_sim_factory() -> Iterator[Callable[..., ProcessSim]]:
    """Like `sim_factory`, but each simulator runs as `harness sim` with two processes."""
    from harness.sim import SimConfig, start_in_process

    with contextlib.ExitStack() as stack:
        def start(cfg: Any = None, **kwargs: Any) -> ProcessSim:
            cfg = (cfg or SimConfig()).with_overrides(**kwargs, processes=PROCESSES, trace_live=True)
            return ProcessSim(stack.enter_context(start_in_process(cfg)))

        yield start


@pytest.fixture
def sim_processes(request: Any) -> int:
    return int(getattr(request, "param", 1))


@pytest.fixture
def sim_factory(sim_factory: Callable[..., Any], sim_processes: int,
                process_sim_factory: Callable[..., ProcessSim]) -> Callable[..., Any]:
    return sim_factory if sim_processes == 1 else process_sim_factory
