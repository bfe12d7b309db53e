"""How many concurrent real-time pcm16 sessions one simulator process serves with the energy VAD.

The simulator runs as `harness sim` in its own process (so it has one core to itself on a 2-core
machine); this script is the load: one asyncio process, one pacer that sends every session's
20 ms chunks on absolute deadlines, and a receive loop per session. Each session repeats a turn
of 1 s speech-like audio + 2 s silence, so the server runs its VAD, commits and streams a
response every 3 s per session. Load is stepped; per step we record the server process's CPU
and the lateness of the server's deliveries (trace: sent_ns - target_ns for every delayed stage),
plus the generator's own send lateness (a step whose generator was late measures nothing).

    python benchmarks/sim_capacity.py [--steps 10,20,30,40,60,80,100] [--step-s 10]

Writes benchmarks/results/sim_capacity.json. Takes about 1.5 minutes with the default steps.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import websockets
from websockets.asyncio.client import connect

from harness.audio import to_wire
from harness.protocol import AudioFormat

RESULTS = Path(__file__).resolve().parent / "results" / "sim_capacity.json"
CHUNK_MS = 20
FMT = AudioFormat.PCM16
LATENESS_LIMIT_MS = 20.0
CPU_LIMIT_PCT = 85.0


def turn_messages() -> list[str]:
    """One 3 s turn (1 s speech-like tone, 2 s silence) as pre-encoded append messages."""
    rate = FMT.rate_hz
    t = np.arange(rate) / rate
    speech = sum(np.sin(2 * np.pi * 170 * k * t) / k for k in range(1, 4)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    samples = np.concatenate([speech / np.max(np.abs(speech)) * 8000, np.zeros(2 * rate)]).astype(np.int16)
    wire = to_wire(samples, rate, FMT)
    step = int(rate * CHUNK_MS / 1000) * FMT.bytes_per_sample
    return [json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(wire[i:i + step]).decode()})
            for i in range(0, len(wire), step)]


class Load:
    def __init__(self, url: str) -> None:
        self.url = url
        self.messages = turn_messages()
        self.sessions: list[websockets.ClientConnection] = []
        self.readers: list[asyncio.Task] = []
        self.lateness_ms: list[float] = []
        self.received = 0
        self.responses = 0

    async def add(self, count: int) -> None:
        session = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000},
                                                           "turn_detection": {"type": "server_vad",
                                                                              "silence_duration_ms": 500}}}}
        for _ in range(count):
            ws = await connect(self.url, max_size=None, compression=None, ping_interval=None)
            await ws.send(json.dumps({"type": "session.update", "session": session}))
            self.sessions.append(ws)
            self.readers.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: websockets.ClientConnection) -> None:
        try:
            while True:
                frame = await ws.recv(decode=False)  # bytes: no UTF-8 decoding, the load only counts
                self.received += 1
                if b'"response.done"' in frame[:40]:
                    self.responses += 1
        except websockets.ConnectionClosed:
            pass

    async def pace(self, seconds: float) -> None:
        """Send every session's chunks on 20 ms deadlines (sessions spread over the slot)."""
        n = len(self.sessions)
        start = time.perf_counter_ns()
        period = CHUNK_MS * 1_000_000
        ticks = int(seconds * 1000 / CHUNK_MS)
        for tick in range(ticks):
            for i, ws in enumerate(self.sessions):
                due = start + tick * period + i * period // n
                now = time.perf_counter_ns()
                if due > now:
                    await asyncio.sleep((due - now) / 1e9)
                    now = time.perf_counter_ns()
                self.lateness_ms.append((now - due) / 1e6)
                await ws.send(self.messages[(tick + i) % len(self.messages)])

    async def close(self) -> None:
        for ws in self.sessions:
            await ws.close()
        for task in self.readers:
            task.cancel()


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None, "count": 0}
    arr = np.asarray(values)
    return {"p50": round(float(np.percentile(arr, 50)), 3), "p99": round(float(np.percentile(arr, 99)), 3),
            "max": round(float(arr.max()), 3), "count": int(arr.size)}


def server_lateness(trace_path: Path, t0_ns: int, t1_ns: int) -> tuple[dict, dict]:
    """Lateness of every delayed send, and of VAD stop decisions alone, within [t0, t1)."""
    late, vad = [], []
    with trace_path.open() as handle:
        for line in handle:
            if '"stage"' not in line:
                continue
            rec = json.loads(line)
            if t0_ns <= rec["sent_ns"] < t1_ns:
                value = (rec["sent_ns"] - rec["target_ns"]) / 1e6
                late.append(value)
                if rec["stage"] == "vad_decision":
                    vad.append(value)
    return percentiles(late), percentiles(vad)


async def run(steps: list[int], step_s: float) -> dict:
    trace = Path(tempfile.mkdtemp(prefix="sim_capacity_")) / "trace.jsonl"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "harness", "sim", "--port", "0", "--quiet", "--trace-file",
                             str(trace)], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
    startup_s = time.perf_counter() - started
    server = psutil.Process(proc.pid)
    load = Load(url)
    results = []
    try:
        for count in steps:
            await load.add(count - len(load.sessions))
            await load.pace(2.0)  # warm-up: first turns start, VAD state settles
            load.lateness_ms.clear()
            responses_before = load.responses
            cpu_before = server.cpu_times()
            own_before = psutil.Process().cpu_times()
            t0, wall0 = time.perf_counter_ns(), time.perf_counter()
            await load.pace(step_s)
            t1, wall1 = time.perf_counter_ns(), time.perf_counter()
            cpu_after = server.cpu_times()
            own_after = psutil.Process().cpu_times()
            own_pct = 100 * ((own_after.user + own_after.system) - (own_before.user + own_before.system)) / (wall1 - wall0)
            await asyncio.sleep(0.3)  # let the trace file catch up
            cpu_pct = 100 * ((cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)) / (wall1 - wall0)
            late, vad_late = server_lateness(trace, t0, t1)
            generator = percentiles(load.lateness_ms)
            ok = (late["p99"] is not None and late["p99"] < LATENESS_LIMIT_MS and cpu_pct < CPU_LIMIT_PCT)
            step = {"sessions": count, "seconds": round(wall1 - wall0, 1), "server_cpu_pct": round(cpu_pct, 1),
                    "server_send_lateness_ms": late, "vad_stop_lateness_ms": vad_late,
                    "responses": load.responses - responses_before, "generator_send_lateness_ms": generator,
                    "generator_cpu_pct": round(own_pct, 1),
                    "loadavg_1min": round(os.getloadavg()[0], 2),  # other work on the machine skews the tail
                    "generator_valid": generator["p99"] is not None and generator["p99"] < 20.0 and own_pct < 80,
                    "ok": ok}
            print(json.dumps(step), flush=True)
            results.append(step)
            if not ok:
                break
    finally:
        await load.close()
        proc.terminate()
        proc.wait(10)
    passing = [s["sessions"] for s in results if s["ok"] and s["generator_valid"]]
    return {"startup_s": round(startup_s, 2), "steps": results, "max_sessions_ok": max(passing) if passing else 0}


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version(), "websockets": websockets.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10,20,30,40,60,80,100")
    parser.add_argument("--step-s", type=float, default=10.0)
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    outcome = asyncio.run(run(steps, args.step_s))
    report = {
        "benchmark": "sim_capacity", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "setup": {"format": FMT.value, "chunk_ms": CHUNK_MS, "turn": "1 s speech + 2 s silence, server_vad 500 ms",
                  "vad": "energy", "criterion": f"server send lateness p99 < {LATENESS_LIMIT_MS} ms and server CPU "
                                                f"< {CPU_LIMIT_PCT} % (generator p99 < 20 ms for a valid step)"},
        **outcome,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(f"max sessions within the criterion: {report['max_sessions_ok']}; wrote {RESULTS}")


if __name__ == "__main__":
    main()
