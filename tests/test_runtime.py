"""harness.runtime: the collector's policy and the descriptor reserve of a load process.

Each check runs in a fresh interpreter (a subprocess), so pytest's own collector and descriptor
table are never changed; the child prints what it saw as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any


def _child(code: str) -> Any:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_reserving_descriptors_grows_the_table_once_to_the_size_asked_or_the_limit() -> None:
    seen = _child("""
        import json, os, resource, threading
        from harness.runtime import reserve_descriptors
        threading.Thread(target=threading.Event().wait, daemon=True).start()   # as in a load process
        def fdsize():
            return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('FDSize:'))
        before = fdsize()
        got = reserve_descriptors(4096)
        after = fdsize()
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(1500)]
        print(json.dumps({"before": before, "got": got, "after": after, "soft": soft, "later": fdsize(),
                          "lowest": min(fds)}))
    """)
    assert seen["got"] == min(4096, seen["soft"])
    assert seen["before"] < 4096 <= seen["after"] or seen["soft"] < 4096
    assert seen["later"] == seen["after"]          # 1,500 more descriptors: the table did not grow again
    assert seen["lowest"] < 64                    # the reserve held no descriptor open


def test_paused_collection_frees_nothing_until_the_valve_or_the_resume_and_then_frees_the_cycles() -> None:
    seen = _child("""
        import gc, json
        from harness.runtime import GarbageValve, collections_paused, pause_collections, resume_collections
        class Node:
            pass
        def cycles(n):
            for _ in range(n):
                a, b = Node(), Node()
                a.other, b.other = b, a
        pause_collections()
        paused = collections_paused()
        valve = GarbageValve(limit=30_000)
        cycles(1000)
        early = valve.check()                          # 2,000 tracked nodes: under the limit
        cycles(20_000)
        fired = valve.check()
        cycles(1000)
        left = resume_collections()
        print(json.dumps({"paused": paused, "early": early is None, "found": fired.found if fired else None,
                          "tracked": fired.tracked if fired else None, "left": left,
                          "enabled": gc.isenabled(), "deferred": gc.get_threshold()[2] >= 1 << 30}))
    """)
    assert seen["paused"] and seen["early"]
    assert seen["tracked"] >= 30_000 and seen["found"] >= 2 * 21_000   # every node of every cycle so far
    assert seen["left"] >= 2 * 1000 and seen["enabled"] and seen["deferred"]
