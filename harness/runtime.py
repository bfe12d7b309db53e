"""Process-wide settings of a process that keeps time for many sessions: the caller's Locust
process and the simulator's processes.

The garbage collector is the one piece of the interpreter that stops every session of a process
at once. A full (generation 2) collection walks every tracked object the process holds; at 150
callers it held the interpreter 22-54 ms every ~20 s, and each of those stalls made every turn in
flight `invalid_pacing` (148 of 884 turns). `defer_full_collections` freezes what is alive at
start-up (modules, corpora, encoded clips, answer audio: they live as long as the process) and
stops automatic full collections; young collections (generations 0 and 1) run as before and free
short-lived cycles. What a full collection would free is the cyclic garbage of ended sessions,
about a hundred objects each; `collect_now` frees it where nothing is being timed (a run's end).

At 300 callers the young collections stalled too: their generations held 20,000-60,000 objects
(dicts and tuples become tracked without counting towards the threshold), and one collection took
7-43 ms, each making every turn in flight `invalid_pacing`. The Locust load process therefore
pauses automatic collection for a run, and a simulator process while it serves
(`pause_collections`): it was measured to leave 4,250 objects of cyclic garbage after 2,251 turns
at 300 callers, freed by one collection at the run's end (`resume_collections`, 8 ms). `GarbageValve` bounds the memory a run that makes garbage
faster could hold: past `VALVE_OBJECTS` new tracked objects it collects once (one stall, logged).

The kernel stalls such a process too: its descriptor table doubles when a new descriptor passes
256, 512, 1024, 2048, ..., and in a process with more than one thread each doubling waits for an
RCU grace period (measured here: 7-15 ms per doubling, one connect of a 300-user run took 25 ms and
made 81 turns' appends late). `reserve_descriptors` grows the table once, before the run.

This module imports nothing from the package, so any unit may use it.
"""

from __future__ import annotations

import gc
import os
import resource
import time
from dataclasses import dataclass

# gen1 collections between two full collections: so high that no full collection runs on its own.
FULL_COLLECTION_EVERY = 1 << 30
# New tracked objects (net of those freed) after which a paused process collects once anyway.
VALVE_OBJECTS = 3_000_000
# How often a paused process looks at its valve.
VALVE_CHECK_S = 1.0
# Descriptors reserved for a run: 3 per session (socket, its writer's duplicate, trace file).
RESERVED_DESCRIPTORS = 65536


def defer_full_collections() -> None:
    """Freeze everything alive now and stop automatic full collections in this process."""
    gc.freeze()
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, FULL_COLLECTION_EVERY)


def full_collections_deferred() -> bool:
    return gc.get_threshold()[2] >= FULL_COLLECTION_EVERY


def collect_now() -> int:
    """One full collection now; the number of unreachable objects it found."""
    return gc.collect()


def pause_collections() -> None:
    """No automatic collection at all from now on (a run starts): what is alive is frozen."""
    defer_full_collections()
    gc.disable()


def collections_paused() -> bool:
    return not gc.isenabled()


def resume_collections() -> int:
    """The run is over: collect what it left (one full collection) and collect automatically
    again (full collections still deferred). The number of unreachable objects found."""
    found = collect_now()
    gc.enable()
    return found


@dataclass
class ValveCollection:
    """One collection the valve made: how many new objects had built up, found, and its stall."""

    tracked: int
    found: int
    took_ms: float

    def words(self) -> str:
        """What a process says of it (its log or stderr)."""
        return (f"{self.tracked} new objects built up with garbage collection paused; one collection found "
                f"{self.found} unreachable and held this process {self.took_ms:.1f} ms")


class GarbageValve:
    """Checked now and then (about once a second) while collections are paused: when the tracked
    objects made since the last collection pass `limit`, one collection frees the garbage among them."""

    def __init__(self, limit: int = VALVE_OBJECTS) -> None:
        self.limit = limit
        self.collections: list[ValveCollection] = []
        self.peak = 0

    def check(self) -> ValveCollection | None:
        if not collections_paused():
            return None
        tracked = gc.get_count()[0]
        self.peak = max(self.peak, tracked)
        if tracked < self.limit:
            return None
        started = time.perf_counter()
        found = collect_now()
        done = ValveCollection(tracked, found, (time.perf_counter() - started) * 1e3)
        self.collections.append(done)
        return done


def reserve_descriptors(count: int = RESERVED_DESCRIPTORS) -> int:
    """Grow this process's descriptor table now to hold `count` descriptors (at most its
    RLIMIT_NOFILE), so no later open, accept or dup waits for the kernel to grow it. Returns the
    size reserved (the table never shrinks)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = min(count, soft if soft != resource.RLIM_INFINITY else count) - 1
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        if top > fd:
            os.dup2(fd, top, inheritable=False)
            os.close(top)
    finally:
        os.close(fd)
    return max(top + 1, 0)
