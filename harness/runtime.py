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

This module imports nothing from the package, so any unit may use it.
"""

from __future__ import annotations

import gc

# gen1 collections between two full collections: so high that no full collection runs on its own.
FULL_COLLECTION_EVERY = 1 << 30


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
