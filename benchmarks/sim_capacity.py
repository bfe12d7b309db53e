"""How many concurrent real-time sessions one simulator process serves (energy VAD, pcm16 or G.711).

The simulator runs as `harness sim` in its own process, pinned to one core; this script is the
load, pinned to the other: one asyncio process, one pacer that sends every session's 20 ms
chunks on absolute deadlines in 1 ms slots, and a frame counter per connection. The load speaks
WebSocket itself over plain sockets (handshake, then pre-built masked frames written straight
to the transport, and only the frame headers of what comes back are parsed), so one core of
load can drive several hundred sessions; it measures its own send lateness and CPU, and a step
whose load was late measures nothing (`generator_valid`).

Each session repeats a turn of 1 s speech-like audio + 2 s silence, so the server runs its
VAD, commits and streams a response every 3 s per session. Load is stepped; per step we record
the server process's CPU and the simulator's own lateness against its latency model, read from
its trace: every send (actual send time minus intended: the stage's deadline, or for a frame due
at once the moment it was queued) and every VAD decision (handled minus arrival). A simulator
from before its lateness records existed is measured on its delayed stages (sent - target).

    python benchmarks/sim_capacity.py [--steps 30,100,200,300,400,500] [--step-s 10] [--format pcm16]
        [--processes 1] [--label NAME] [--sim-path DIR]

`--sim-path DIR` runs the simulator from another checkout (e.g. an export of an older commit),
to compare before and after in one sitting. Results are merged into
benchmarks/results/sim_capacity.json under `runs[LABEL]` (other runs in the file are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil
import websockets
from websockets.utils import apply_mask

from harness.audio import to_wire
from harness.protocol import AudioFormat
from scheduling import scheduling

RESULTS = Path(__file__).resolve().parent / "results" / "sim_capacity.json"
CHUNK_MS = 20
LATENESS_LIMIT_MS = 5.0
GENERATOR_LIMIT_MS = 20.0
GENERATOR_CPU_LIMIT_PCT = 85.0
SIM_CPU, LOAD_CPU = 1, 0
NICE = -10


def _frame(payload: bytes) -> bytes:
    """A masked client text frame (FIN) carrying `payload`."""
    mask = secrets.token_bytes(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + apply_mask(payload, mask)


def turn_frames(fmt: AudioFormat) -> list[bytes]:
    """One 3 s turn (1 s speech-like tone, 2 s silence) as pre-built append frames."""
    rate = 24000
    t = np.arange(rate) / rate
    speech = sum(np.sin(2 * np.pi * 170 * k * t) / k for k in range(1, 4)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    samples = np.concatenate([speech / np.max(np.abs(speech)) * 8000, np.zeros(2 * rate)]).astype(np.int16)
    wire = to_wire(samples, rate, fmt)
    step = int(fmt.rate_hz * CHUNK_MS / 1000) * fmt.bytes_per_sample
    return [_frame(json.dumps({"type": "input_audio_buffer.append",
                               "audio": base64.b64encode(wire[i:i + step]).decode()}).encode())
            for i in range(0, len(wire), step)]


def session_frame(fmt: AudioFormat) -> bytes:
    formats = {AudioFormat.PCM16: {"type": "audio/pcm", "rate": 24000}, AudioFormat.G711_ULAW: {"type": "audio/pcmu"},
               AudioFormat.G711_ALAW: {"type": "audio/pcma"}}
    session = {"type": "realtime", "audio": {"input": {"format": formats[fmt],
                                                       "turn_detection": {"type": "server_vad",
                                                                          "silence_duration_ms": 500}},
                                             "output": {"format": formats[fmt]}}}
    return _frame(json.dumps({"type": "session.update", "session": session}).encode())


class Conn(asyncio.Protocol):
    """One client connection: the upgrade, then counting the server's frames from their headers."""

    def __init__(self, load: "Load", path: str, host: str) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:12])
            del buf[:end + 4]
            if b" 101" not in status:
                self.upgraded.set_exception(ConnectionError(f"upgrade refused: {status!r}"))
                return
            self.upgraded.set_result(None)
        pos, size = 0, len(buf)
        load = self.load
        while size - pos >= 2:
            opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if size - pos < head + n:
                break
            if opcode == 0x8:
                self.closed = True
            else:
                load.received += 1
                if buf.find(b'"response.done"', pos + head, pos + head + 40) >= 0:
                    load.responses += 1
                    if buf.find(b'"status":"completed"', pos + head, pos + head + n) >= 0:
                        load.completed += 1
            pos += head + n
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("closed during the upgrade"))


class Load:
    def __init__(self, url: str, fmt: AudioFormat) -> None:
        rest = url.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        self.host, port = hostport.rsplit(":", 1)
        self.port, self.path = int(port), "/" + path
        self.frames = turn_frames(fmt)
        self.session_update = session_frame(fmt)
        self.conns: list[Conn] = []
        self.lateness_ns: list[int] = []
        self.received = 0
        self.responses = 0
        self.completed = 0
        self.ticks_done = 0  # the turn cycle carries on from one pace() to the next

    async def add(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            _, conn = await loop.create_connection(lambda: Conn(self, self.path, f"{self.host}:{self.port}"),
                                                   self.host, self.port)
            await asyncio.wait_for(conn.upgraded, 10)
            assert conn.transport is not None
            conn.transport.write(self.session_update)
            self.conns.append(conn)
        await asyncio.sleep(0.2)

    async def pace(self, seconds: float) -> None:
        """Send every session's chunks on 20 ms deadlines (sessions spread over the slot), 1 ms slots."""
        conns = [c for c in self.conns if not c.closed and c.transport is not None]
        n = len(conns)
        period = CHUNK_MS * 1_000_000
        ticks = int(seconds * 1000 / CHUNK_MS)
        frames, count = self.frames, len(self.frames)
        base = self.ticks_done
        self.ticks_done += ticks
        start = time.perf_counter_ns() + 1_000_000
        late = self.lateness_ns
        offsets = [i * period // n for i in range(n)]
        total = ticks * n
        k = 0
        while k < total:
            now = time.perf_counter_ns()
            while k < total:
                tick, i = divmod(k, n)
                due = start + tick * period + offsets[i]
                if due > now:
                    break
                conn = conns[i]
                if not conn.closed:
                    conn.transport.write(frames[(base + tick + i) % count])  # type: ignore[union-attr]
                late.append(time.perf_counter_ns() - due)
                k += 1
            if k < total:
                tick, i = divmod(k, n)
                due = start + tick * period + offsets[i]
                wait = (due - time.perf_counter_ns()) / 1e9
                await asyncio.sleep(max(0.0, wait))

    def close(self) -> None:
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.close()


def percentiles(values_ms: list[float] | np.ndarray) -> dict[str, float | int | None]:
    arr = np.asarray(values_ms, dtype=float)
    if not arr.size:
        return {"p50": None, "p99": None, "max": None, "count": 0}
    return {"p50": round(float(np.percentile(arr, 50)), 3), "p99": round(float(np.percentile(arr, 99)), 3),
            "max": round(float(arr.max()), 3), "count": int(arr.size)}


class TraceReader:
    """Reads the simulator's trace file(s) incrementally; lateness of sends and decisions in a window."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.offsets: dict[Path, int] = {}

    def _files(self) -> list[Path]:
        return sorted(p for p in self.base.parent.glob(self.base.stem + "*" + self.base.suffix))

    def window(self, t0: int, t1: int) -> dict[str, Any]:
        sends, decisions, staged, vad = [], [], [], []
        for path in self._files():
            with path.open("rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                data = handle.read()
            cut = data.rfind(b"\n") + 1
            self.offsets[path] = self.offsets.get(path, 0) + cut
            for line in data[:cut].splitlines():
                if b'"send"' not in line and b'"vad"' not in line:
                    continue
                rec = orjson.loads(line)
                t = rec.get("t_ns") or 0
                if not t0 <= t < t1:
                    continue
                if rec.get("rec") == "send":
                    if "late_ns" in rec:
                        sends.append(rec["late_ns"] / 1e6)
                    if rec.get("target_ns") is not None:
                        staged.append((rec["sent_ns"] - rec["target_ns"]) / 1e6)
                        if rec.get("stage") == "vad_decision":
                            vad.append((rec["sent_ns"] - rec["target_ns"]) / 1e6)
                elif rec.get("rec") == "vad" and "late_ns" in rec:
                    decisions.append(rec["late_ns"] / 1e6)
        measured = sends + decisions
        return {"sim_lateness_ms": percentiles(measured) if measured else None,
                "send_lateness_ms": percentiles(sends) if sends else None,
                "decision_lateness_ms": percentiles(decisions) if decisions else None,
                "staged_send_lateness_ms": percentiles(staged), "vad_stop_lateness_ms": percentiles(vad)}


def _preempted(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.num_ctx_switches().involuntary
    return total


def _cpu_s(proc: psutil.Process, children: bool = True) -> float:
    total = 0.0
    for p in [proc, *(proc.children(recursive=True) if children else [])]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def run(args: argparse.Namespace) -> dict[str, Any]:
    fmt = AudioFormat(args.format)
    steps = [int(s) for s in args.steps.split(",")]
    trace = Path(tempfile.mkdtemp(prefix="sim_capacity_")) / "trace.jsonl"
    cmd = [sys.executable, "-m", "harness", "sim", "--port", "0", "--quiet", "--trace-file", str(trace)]
    if args.processes > 1:
        cmd += ["--processes", str(args.processes)]
    if args.event_loop:
        cmd += ["--event-loop", args.event_loop]
    env = dict(os.environ)
    if args.sim_path:
        env["PYTHONPATH"] = args.sim_path
    sim_cpus = {SIM_CPU} if args.processes <= 1 else set(range(os.cpu_count() or 1))
    started = time.perf_counter()
    def pin() -> None:
        os.sched_setaffinity(0, sim_cpus)
        with contextlib.suppress(OSError):
            os.nice(NICE)  # other work on the machine should not take the simulator's core (needs root)

    # `python -m` puts the working directory first on the path: run another checkout from its own folder
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=pin, cwd=args.sim_path or None)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
    startup_s = time.perf_counter() - started
    os.sched_setaffinity(0, {LOAD_CPU})
    with contextlib.suppress(OSError):
        os.nice(NICE)
    server = psutil.Process(proc.pid)
    me = psutil.Process()
    load = Load(url, fmt)
    reader = TraceReader(trace)
    results = []
    try:
        for count in steps:
            await load.add(count - len(load.conns))
            await load.pace(2.0)  # warm-up: first turns start, VAD state settles
            load.lateness_ns.clear()
            responses_before, completed_before = load.responses, load.completed
            cpu_before, own_before = _cpu_s(server), _cpu_s(me, children=False)
            switches_before = _preempted(server)
            t0, wall0 = time.perf_counter_ns(), time.perf_counter()
            await load.pace(args.step_s)
            t1, wall1 = time.perf_counter_ns(), time.perf_counter()
            cpu_pct = 100 * (_cpu_s(server) - cpu_before) / (wall1 - wall0)
            preempted = _preempted(server) - switches_before
            own_pct = 100 * (_cpu_s(me, children=False) - own_before) / (wall1 - wall0)
            await asyncio.sleep(0.5)  # let the trace file catch up
            late = reader.window(t0, t1)
            generator = percentiles(np.asarray(load.lateness_ns) / 1e6)
            measured = late["sim_lateness_ms"] or late["staged_send_lateness_ms"]
            generator_valid = (generator["p99"] is not None and generator["p99"] < GENERATOR_LIMIT_MS
                               and own_pct < GENERATOR_CPU_LIMIT_PCT)
            ok = measured["p99"] is not None and measured["p99"] <= LATENESS_LIMIT_MS
            step = {"sessions": count, "seconds": round(wall1 - wall0, 1), "server_cpu_pct": round(cpu_pct, 1),
                    **late, "responses": load.responses - responses_before,
                    "responses_completed": load.completed - completed_before,
                    "appends_per_s": round(len(load.lateness_ns) / (wall1 - wall0)),
                    "server_cpu_us_per_append": round(cpu_pct / 100 * 1e6 / max(1, len(load.lateness_ns) / (wall1 - wall0)), 1),
                    "generator_send_lateness_ms": generator, "generator_cpu_pct": round(own_pct, 1),
                    "loadavg_1min": round(os.getloadavg()[0], 2),  # other work on the machine skews the tail
                    "server_preempted": preempted,  # involuntary context switches: its core was taken
                    "generator_valid": generator_valid, "ok": ok}
            print(json.dumps(step), flush=True)
            results.append(step)
            if not ok and not args.keep_going:
                break
    finally:
        load.close()
        proc.terminate()
        proc.wait(15)
    passing = [s["sessions"] for s in results if s["ok"] and s["generator_valid"]]
    return {"startup_s": round(startup_s, 2), "steps": results, "max_sessions_ok": max(passing) if passing else 0}


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    busy = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            p.cpu_percent(None)
            busy.append(p)
        except psutil.Error:
            pass
    time.sleep(1.0)
    others = []
    for p in busy:
        try:
            pct = p.cpu_percent(None)
        except psutil.Error:
            continue
        if pct >= 5 and p.pid != os.getpid():
            others.append({"cpu_pct": round(pct, 1), "cmd": " ".join(p.info["cmdline"] or [p.info["name"]])[:120]})
    return {"nproc": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version(), "websockets": websockets.__version__,
            "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
            "other_busy_processes": others, "scheduling": scheduling()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="30,100,200,300,400,500")
    parser.add_argument("--step-s", type=float, default=10.0)
    parser.add_argument("--format", default="pcm16", choices=[f.value for f in AudioFormat])
    parser.add_argument("--processes", type=int, default=1, help="simulator processes (1: pinned to one core)")
    parser.add_argument("--label", default=None, help="key of this run in the results file (default FORMAT)")
    parser.add_argument("--sim-path", default=None, help="PYTHONPATH for the simulator (another checkout)")
    parser.add_argument("--event-loop", default=None, choices=("asyncio", "uvloop", "auto"),
                        help="the simulator's event loop (default: its own default, asyncio)")
    parser.add_argument("--keep-going", action="store_true", help="run every step even after one fails")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    before = machine()
    outcome = asyncio.run(run(args))
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": before,
        "setup": {"format": args.format, "chunk_ms": CHUNK_MS, "processes": args.processes,
                  "event_loop": args.event_loop or "default",
                  "sim_path": args.sim_path or "this checkout",
                  "pinning": (f"simulator on cpu {SIM_CPU}, load on cpu {LOAD_CPU}" if args.processes <= 1 else
                              f"simulator on every cpu, load on cpu {LOAD_CPU}") + f", both at nice {NICE}",
                  "turn": "1 s speech + 2 s silence, server_vad 500 ms", "vad": "energy",
                  "criterion": f"simulator lateness p99 <= {LATENESS_LIMIT_MS} ms (every send and decision; "
                               f"staged sends only for a simulator without lateness records); a step counts only "
                               f"when the load kept time (p99 < {GENERATOR_LIMIT_MS} ms, CPU < "
                               f"{GENERATOR_CPU_LIMIT_PCT} %)"},
        **outcome,
    }
    print(f"max sessions within the criterion: {report['max_sessions_ok']}")
    if args.no_write:
        return
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if "runs" not in data:  # the file from before this layout: keep it as the first run
        data = {"benchmark": "sim_capacity", "runs": {"before-2026-11-23 (old load, pcm16)": data} if data else {}}
    data["runs"][args.label or args.format] = report
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {RESULTS} runs[{args.label or args.format!r}]")


if __name__ == "__main__":
    main()
