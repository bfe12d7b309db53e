"""`harness sim --processes N`: N processes serve one port, each with its own event loop and trace.

The parent binds N listening sockets to the same address with SO_REUSEPORT (Linux spreads new
connections over them), loads corpora and renders the answer audio once, and forks N workers; each
worker serves its own socket with its own event loop and writes its own trace file
(`NAME.wK.jsonl`, see `server_trace.worker_trace_path`), read together by `read_records`. Sessions
are numbered by one counter in shared memory, so the N-th session draws the same seeded delays and
faults whichever process serves it. The parent prints the `listening on` line when every worker
listens, passes SIGINT/SIGTERM on, and exits once they have stopped (non-zero if one failed).
"""

from __future__ import annotations

import asyncio
import errno
import multiprocessing
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from harness.runtime import defer_full_collections, reserve_descriptors
from harness.sim.config import SimConfig, SimConfigError
from harness.sim.quiet import serve_quietly
from harness.sim.server_trace import ServerTrace, worker_trace_path

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


def listen_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one address (SO_REUSEPORT); port 0 picks one free port for all."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise SimConfigError("--processes N needs SO_REUSEPORT (Linux, macOS, BSD); use --processes 1 here")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise SimConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host") from None
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            address = sock.getsockname()  # the port chosen by the first, for the others
            sock.listen(1024)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SimConfigError(f"{host}:{port} is already in use; pass --port 0 (any free port) or another port") from None
        raise SimConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port") from None
    return sockets


def shared_counter() -> Callable[[], int]:
    """A session counter shared by forked processes (shared memory and a lock)."""
    value = multiprocessing.RawValue("q", 0)
    lock = multiprocessing.Lock()

    def next_index() -> int:
        with lock:
            index = int(value.value)
            value.value = index + 1
        return index

    return next_index


def _worker(index: int, sock: socket.socket, cfg: SimConfig, prepared: Any, next_index: Callable[[], int],
            ready_fd: int, loop_factory: Any) -> int:
    from harness.sim.server import SimServer

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    reserve_descriptors()   # a forked child's table is only as big as its open descriptors: grown here
    trace_file = str(worker_trace_path(cfg.trace_file, index)) if cfg.trace_file else None
    server = SimServer(cfg.with_overrides(trace_file=trace_file, trace_in_memory=False), worker=index,
                       next_index=next_index)
    server.adopt(prepared)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.start(sock=sock)
        serve_quietly(loop, f"harness sim (process {index})")
        os.write(ready_fd, b"%d\n" % index)
        os.close(ready_fd)
        try:
            await stop.wait()
        finally:
            await server.stop()
            server.trace.close()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve())
    return 0


def serve_processes(cfg: SimConfig, host: str, port: int, loop_factory: Any) -> int:
    """Run `cfg.processes` workers on one port until SIGINT/SIGTERM; returns the exit code."""
    from harness.sim.server import SimServer

    count = cfg.processes
    sockets = listen_sockets(host, port, count)
    template = SimServer(cfg, trace=ServerTrace(None, keep_in_memory=False))  # no file: each worker has its own
    template.prepare()  # corpora and answer audio, once, shared by the workers copy-on-write
    next_index = shared_counter()
    bound = sockets[0].getsockname()
    shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    url = f"ws://{shown_host}:{bound[1]}/v1/realtime"
    read_fd, write_fd = os.pipe()
    defer_full_collections()
    sys.stdout.flush()
    sys.stderr.flush()
    pids: list[int] = []
    for index, sock in enumerate(sockets):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(read_fd)
                for other in sockets:
                    if other is not sock:
                        other.close()
                code = _worker(index, sock, cfg, template.prepared, next_index, write_fd, loop_factory)
            except BaseException as exc:  # noqa: BLE001 - a worker reports and exits, never returns
                print(f"harness sim: worker {index} failed: {exc!r}", file=sys.stderr, flush=True)
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(write_fd)
    for sock in sockets:
        sock.close()
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not _await_ready(read_fd, count, pids):
            stop(signal.SIGTERM, None)
            _reap(pids)
            print("harness sim: a worker did not start", file=sys.stderr, flush=True)
            return 1
        print(f"harness sim: listening on {url}", flush=True)
        print(f"harness sim: {count} processes serve {url}", file=sys.stderr, flush=True)
        codes = _reap(pids, wait_forever=True, stopping=lambda: stopping)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(read_fd)
    return 0 if all(code == 0 for code in codes) else 1


def _await_ready(read_fd: int, count: int, pids: list[int]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    buffer = b""
    while buffer.count(b"\n") < count:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        readable, _, _ = select.select([read_fd], [], [], min(left, 0.5))
        if readable:
            chunk = os.read(read_fd, 1024)
            if not chunk:
                return False  # every worker closed the pipe without saying it listens
            buffer += chunk
        for pid in pids:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return False
    return True


def _reap(pids: list[int], wait_forever: bool = False, stopping: Callable[[], bool] = lambda: True) -> list[int]:
    """Wait for the workers; once stopping, at most STOP_TIMEOUT_S before they are killed."""
    codes: dict[int, int] = {}
    deadline: float | None = None
    while len(codes) < len(pids):
        if deadline is None and (stopping() or not wait_forever or codes):
            deadline = time.monotonic() + STOP_TIMEOUT_S
            if codes and not stopping():  # one worker died: stop the others
                for pid in pids:
                    if pid not in codes:
                        try:
                            os.kill(pid, signal.SIGTERM)
                        except ProcessLookupError:
                            pass
        for pid in pids:
            if pid in codes:
                continue
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                codes[pid] = 1
                continue
            if done:
                codes[pid] = os.waitstatus_to_exitcode(status)
        if deadline is not None and time.monotonic() > deadline:
            for pid in pids:
                if pid not in codes:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + STOP_TIMEOUT_S
        time.sleep(0.05)
    return [codes[pid] for pid in pids]
