"""A process that runs users, quiet for the length of one test: no collector pause, no descriptor
table growth (harness.runtime has the measurements).

At the test's start the descriptor table is grown once and automatic collection is paused (a
young collection took 7-43 ms at 300 callers and made every turn in flight `invalid_pacing`); a
greenlet checks the garbage valve once a second, so a run that builds up garbage faster than
measured is collected once (logged, with its stall) instead of growing without bound; at the
test's stop, after its sessions have ended, one collection frees what the run left and automatic
collection is back.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent

from harness.runtime import (VALVE_CHECK_S, VALVE_OBJECTS, GarbageValve, pause_collections, reserve_descriptors,
                             resume_collections)

log = logging.getLogger("harness.load")


class QuietProcess:
    """One test's quiet: `start` at test_start (before users), `stop` at test_stop (after them)."""

    def __init__(self, valve_objects: int = VALVE_OBJECTS) -> None:
        self.valve_objects = valve_objects
        self.valve: GarbageValve | None = None
        self._watcher: Any = None

    def start(self) -> None:
        self.stop()
        reserve_descriptors()    # no descriptor-table doubling (an RCU wait) while users connect
        pause_collections()
        self.valve = GarbageValve(self.valve_objects)
        self._watcher = gevent.spawn(self._watch, self.valve)

    def _watch(self, valve: GarbageValve) -> None:
        while True:
            gevent.sleep(VALVE_CHECK_S)
            done = valve.check()
            if done is not None:
                log.warning("harness: %s (turns in flight then may be invalid_pacing)", done.words())

    def stop(self) -> int | None:
        """Collection back on; the unreachable objects the run left (None: it was not paused)."""
        if self._watcher is None:
            return None
        self._watcher.kill(block=False)
        self._watcher = None
        found = resume_collections()
        log.debug("harness: the run left %d unreachable objects (valve peak %d tracked)", found,
                  self.valve.peak if self.valve else 0)
        return found
