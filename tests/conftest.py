"""Shared fixtures: the embedded simulator on 127.0.0.1, started in a background thread.

Usage in any test:

    def test_something(sim):                       # default SimConfig()
        ws = websockets.sync.client.connect(sim.url)   # "ws://127.0.0.1:PORT/v1/realtime"
        ...
        sim.trace.select("send", stage="first_audio")  # server-side truth (perf_counter_ns times)

    def test_other(sim_factory):                   # your own settings; several servers allowed
        sim = sim_factory(SimConfig(latency={"first_audio": "fixed:300"}, faults=["drop_socket:after_deltas=2"]))
        sim = sim_factory(seed=3, delta_ms=50)     # keyword arguments build the SimConfig for you

`sim.url` is the WebSocket URL, `sim.port` the port, `sim.trace` the `ServerTrace` (records with
`rec`, `session`, `t_ns`; `send` records of delayed stages carry `stage`, `trigger_ns`,
`delay_ns`, `target_ns`, `sent_ns`). Every simulator a test started is stopped when it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import os

import pytest

# Runs against the embedded simulator in tests that are not about its timing (most of them) must not
# fail its lateness gate on a busy CI machine; tests/sim/test_overload_gate.py sets the limit itself.
os.environ.setdefault("HARNESS_SIM_LATENESS_LIMIT_MS", "1000")

if TYPE_CHECKING:
    from harness.sim import SimConfig

# Modules whose tests compare real time against a known truth (latency, lateness, RTT, pacing).
# CI runs the suite on two workers (`-n 2 --dist loadgroup`, pytest-xdist); these share one worker,
# so no two of them run at once and each sees at most one other test beside it.
TIMING_MODULES = frozenset({
    "test_truth_latency.py", "test_latency_truth.py", "test_overload_gate.py", "test_probes_e2e.py",
    "test_rtt.py", "test_rtt_netem.py", "test_rtt_relay.py", "test_pacer.py", "test_processes.py",
    "test_harness_run.py", "test_target_behaviours.py", "test_playout_e2e.py",
    "test_live_truth.py",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in TIMING_MODULES:
            item.add_marker(pytest.mark.xdist_group("timing"))


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Any]]:
    """`sim_factory(cfg: SimConfig | None = None, **config_kwargs)` -> a running simulator (`.url`, `.trace`)."""
    # imported here so that a broken simulator fails only the tests that use it
    from harness.sim import SimConfig, start_in_thread

    stack: list[Any] = []

    def start(cfg: SimConfig | None = None, **kwargs: Any) -> Any:
        if cfg is None:
            cfg = SimConfig(**kwargs)
        elif kwargs:
            cfg = cfg.with_overrides(**kwargs)
        manager = start_in_thread(cfg, host="127.0.0.1", port=0)
        running = manager.__enter__()
        stack.append(manager)
        return running

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
def sim(sim_factory: Callable[..., Any]) -> Any:
    """A simulator with the default SimConfig (fixed latencies, no faults)."""
    return sim_factory()


def pytest_collection_finish(session: pytest.Session) -> None:
    """No test module may import Locust (or gevent's patching) at collection: it would monkey-patch
    this process's sockets and threads, and break pytest-xdist's workers and every real-time test."""
    import sys

    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        raise pytest.UsageError("a test module imported locust/gevent patching at collection; import it in a "
                                "subprocess or inside the test (see harness/load/status.py's lazy import)")
