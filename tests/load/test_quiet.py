"""harness.load.quiet: for one test, collection paused (the valve still collects), the descriptor
table grown, and both undone at its stop. Under gevent, so in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def test_a_test_runs_with_collection_paused_and_a_grown_descriptor_table_and_the_valve_still_collects() -> None:
    code = textwrap.dedent("""
        import gc, json, logging, resource
        import gevent
        from harness.load.quiet import QuietProcess, VALVE_CHECK_S
        logging.basicConfig(level=logging.WARNING)
        def fdsize():
            return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('FDSize:'))
        class Node:
            pass
        quiet = QuietProcess(valve_objects=20_000)
        quiet.start()
        paused, table = not gc.isenabled(), fdsize()
        for _ in range(15_000):
            a, b = Node(), Node()
            a.other, b.other = b, a
        gevent.sleep(VALVE_CHECK_S * 1.5)          # the valve's greenlet looks once
        fired = [c.found for c in quiet.valve.collections]
        left = quiet.stop()
        print(json.dumps({"paused": paused, "table": table, "soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                          "fired": fired, "left": left, "enabled": gc.isenabled(), "again": quiet.stop()}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["paused"] and seen["table"] >= min(65536, seen["soft"])
    assert seen["fired"] and seen["fired"][0] >= 29_000        # the valve collected the cycles (all but the last pair) once
    assert "one collection found" in done.stderr               # and said so, with its stall
    assert seen["left"] is not None and seen["enabled"] and seen["again"] is None
