"""`harness sim`: run the embedded simulator until Ctrl-C / SIGTERM.

The first stdout line is `harness sim: listening on ws://HOST:PORT/v1/realtime` (flushed), so a
parent process can start it with `--port 0` and read the chosen URL. Settings come from
`--config FILE.toml` with flags on top; see `harness.sim.config` for the TOML layout.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import sys
from typing import Any

from harness.runtime import reserve_descriptors
from harness.sim.config import FunctionCallRule, SimConfig, SimConfigError
from harness.sim.faults import FAULT_KINDS
from harness.sim.latency import STAGES, parse_latency_flag
from harness.sim.quiet import serve_quietly


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    parser.add_argument("--config", metavar="FILE.toml", help="simulator settings file (flags override it)")
    parser.add_argument("--seed", type=int, help="seed of every random choice (latency draws, faults, answers)")
    parser.add_argument("--latency", action="append", default=[], metavar="STAGE=DIST",
                        help="per-stage delay, e.g. first_audio=fixed:300, delta_gap=uniform:20,40, "
                             "vad_decision=normal:50,10, response_start=lognormal:200,0.3; stages: " + ", ".join(STAGES))
    parser.add_argument("--fault", action="append", default=[], metavar="KIND[:k=v,...]",
                        help="inject a fault, e.g. drop_socket:p=0.5, stall:after_deltas=3,ms=4000, close:code=4000; "
                             "kinds: " + ", ".join(FAULT_KINDS))
    parser.add_argument("--delta-ms", type=int, help="audio per output delta in ms (default 100)")
    parser.add_argument("--ms-per-char", type=float, help="answer audio per transcript character (default 60)")
    parser.add_argument("--reply-text", help="answer every turn with this text")
    parser.add_argument("--voice", choices=("tone", "corpus"), help="answer audio: shaped tone or corpus clips")
    parser.add_argument("--vad", choices=("energy", "silero"), help="server VAD (default energy; silero needs harness[vad])")
    parser.add_argument("--corpus", action="append", metavar="DIR", help="corpus whose utterances are recognised")
    parser.add_argument("--function-every", type=int, metavar="N", help="every N-th response calls a tool")
    parser.add_argument("--function-match", metavar="REGEX", help="call a tool when the transcript matches")
    parser.add_argument("--discard", action="store_true", default=None,
                        help="accept sessions and appends but answer nothing (pacing benchmarks)")
    parser.add_argument("--require-key", action="store_true", default=None,
                        help="refuse connections without an API key (invalid_api_key, then close)")
    parser.add_argument("--api-key-env", metavar="NAME", help="with --require-key: the key must equal $NAME")
    parser.add_argument("--reject-beta", action="store_true", default=None,
                        help="refuse the beta dialect like api.openai.com today (beta_api_shape_disabled, close 4000)")
    parser.add_argument("--trace-file", metavar="PATH", help="append the server trace (JSONL) to PATH")
    parser.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"),
                        help="event loop: auto (uvloop when installed, else asyncio; the default), uvloop "
                             "(pip install uvloop) or asyncio")
    parser.add_argument("--processes", type=int, metavar="N",
                        help="serve the port from N processes (SO_REUSEPORT), each with its own event loop and "
                             "trace file NAME.wK.jsonl beside --trace-file (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no per-connection log lines")


def build_config(args: argparse.Namespace) -> SimConfig:
    cfg = SimConfig.from_toml(args.config) if args.config else SimConfig()
    changes: dict[str, Any] = {
        "seed": args.seed, "delta_ms": args.delta_ms, "ms_per_char": args.ms_per_char, "reply_text": args.reply_text,
        "voice": args.voice, "vad": args.vad, "discard": args.discard, "reject_beta": args.reject_beta, "trace_file": args.trace_file,
        "event_loop": args.event_loop, "processes": args.processes,
        "corpus": tuple(args.corpus) if args.corpus else None,
    }
    if args.require_key or args.api_key_env:
        changes["require_key"] = f"ENV:{args.api_key_env}" if args.api_key_env else True
    if args.latency:
        specs = dict(parse_latency_flag(text) for text in args.latency)
        changes["latency"] = cfg.latency_model.with_specs(specs)
    if args.fault:
        changes["faults"] = [*cfg.fault_plan.describe(), *args.fault]
    if args.function_every is not None or args.function_match is not None:
        rule = cfg.function_call
        changes["function_call"] = FunctionCallRule(
            every=rule.every if args.function_every is None else args.function_every,
            match=rule.match if args.function_match is None else args.function_match,
            arguments=rule.arguments, by_tool_name=rule.by_tool_name)
    return cfg.with_overrides(**changes)


async def _serve(cfg: SimConfig, host: str, port: int) -> None:
    from harness.sim.server import SimServer

    # nobody reads the trace in memory here; the file (if any) is the record
    server = SimServer(cfg.with_overrides(trace_in_memory=False))
    # handlers first: a parent may signal as soon as it has read the URL line
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        url = await server.start(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SimConfigError(f"{host}:{port} is already in use; pass --port 0 (any free port) or another port") from None
        raise SimConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port") from None
    # Everything loaded so far (modules, corpora, answer audio) lives as long as the process: frozen,
    # and no collection stalls every session (harness.runtime, harness.sim.quiet).
    serve_quietly(loop)
    reserve_descriptors()   # accepting sessions never waits for the descriptor table to grow
    print(f"harness sim: listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
        server.trace.close()


def loop_factory(choice: str) -> Any:
    """The event loop factory for SimConfig.event_loop (None: asyncio's default)."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SimConfigError("event_loop=uvloop: uvloop is not installed; pip install uvloop, or use "
                                 "--event-loop asyncio") from None
        return None
    return uvloop.new_event_loop


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    cfg = build_config(args)
    if cfg.processes > 1:
        from harness.sim.workers import serve_processes

        code = serve_processes(cfg, args.host, args.port, loop_factory(cfg.event_loop))
        print("harness sim: stopped", file=sys.stderr, flush=True)
        return code
    with asyncio.Runner(loop_factory=loop_factory(cfg.event_loop)) as runner:
        runner.run(_serve(cfg, args.host, args.port))
    print("harness sim: stopped", file=sys.stderr, flush=True)
    return 0
