"""The embedded Realtime simulator: a protocol-faithful server on loopback with a server VAD,
a per-stage latency model and fault injection, recording its own decisions in a server trace.

    from harness.sim import SimConfig, SimServer, start_in_thread
    with start_in_thread(SimConfig(latency={"first_audio": "fixed:300"})) as sim:
        sim.url, sim.trace

`start_in_process` runs the same server as a child process (own GIL; for load runs), with
`SimConfig(processes=N)` as N processes serving one port. Every process measures its own lateness
against its latency model (`lateness.py`); `SimProcess.lateness()` merges them.
"""

from harness.sim.config import FunctionCallRule, SimConfig, SimConfigError
from harness.sim.faults import FAULT_KINDS, Fault, FaultPlan
from harness.sim.latency import STAGES, Distribution, LatencyModel
from harness.sim.process import SimProcess, start_in_process
from harness.sim.server import SimServer, ThreadedSim, start_in_thread
from harness.sim.server_trace import ServerTrace

__all__ = [
    "FAULT_KINDS",
    "STAGES",
    "Distribution",
    "Fault",
    "FaultPlan",
    "FunctionCallRule",
    "LatencyModel",
    "ServerTrace",
    "SimConfig",
    "SimConfigError",
    "SimProcess",
    "SimServer",
    "ThreadedSim",
    "start_in_process",
    "start_in_thread",
]
