"""The cheap sink for benchmarks/pacing.py: the embedded simulator in discard mode, in its own process.

Prints its URL on the first line of stdout, then serves until stdin closes. Start it pinned to
another core than the clients (`taskset -c 1 python benchmarks/pacing_sink.py`).
"""

from __future__ import annotations

import sys

from harness.sim import SimConfig, start_in_thread


def main() -> None:
    with start_in_thread(SimConfig(discard=True), host="127.0.0.1", port=0) as sim:
        print(sim.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
