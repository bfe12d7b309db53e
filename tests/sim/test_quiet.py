"""harness.sim.quiet: a serving simulator process collects nothing on its own, but its valve,
checked on the event loop, still collects once (and says so) past its limit. In a fresh
interpreter, so pytest's collector is left alone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def test_a_serving_simulator_pauses_collection_and_its_valve_collects_once_past_the_limit_and_says_so() -> None:
    code = textwrap.dedent("""
        import asyncio, gc, json
        from harness.sim.quiet import VALVE_CHECK_S, serve_quietly
        class Node:
            pass
        async def main():
            valve = serve_quietly(asyncio.get_running_loop(), "sim-under-test", valve_objects=20_000)
            paused = not gc.isenabled()
            for _ in range(15_000):
                a, b = Node(), Node()
                a.other, b.other = b, a
            await asyncio.sleep(VALVE_CHECK_S * 1.5)
            return {"paused": paused, "found": [c.found for c in valve.collections]}
        print(json.dumps(asyncio.run(main())))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["paused"] and len(seen["found"]) == 1 and seen["found"][0] >= 29_000
    assert "sim-under-test:" in done.stderr and "one collection found" in done.stderr
