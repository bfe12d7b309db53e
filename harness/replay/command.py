"""`harness replay BUNDLE`: reproduce a recorded incident against a target or the simulator.

    harness replay reports/RUN/incidents/SESSION-TURN --repeat 10 [--target URL] [--sim-fault ...]
    harness replay reports/RUN/incidents/SESSION-TURN --anchor session   # recorded offsets, no decisions
    harness replay reports/RUN/incidents/SESSION-TURN --timeline-only timeline.html
    harness replay --bundle-run reports/RUN [--all]  # (re)write the run's incident bundles

Every replay gets one line: the cause recurred, or what happened instead (the target refused the
session, with its error and close code; every turn timed out; another cause; the turns'
statuses). The traces and `replay.json` (the same outcome, for machines) go to `--out` (default
a new temporary folder), whose path is printed last.

Exit 0 when the replays ran; 1 with `--expect-reproduce` unless the cause recurred every time;
2 for bad input (a garbage bundle, a bad option, a missing key); 3 when no replay got as far as
sending audio (the target refused every session, or could not be reached).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from harness.corpus import CorpusError
from harness.exit_codes import ExitCode
from harness.load.options import DEFAULT_API_KEY_ENV, _check_api_key
from harness.replay.bundle import BUNDLES_PER_CAUSE, BundleError, corpus_dir, write_incident_bundles
from harness.replay.bundle_files import PLAIN_TRACE_FILE, bundle_trace
from harness.replay.replay import load_bundle, replay


class ReplayOptionError(ValueError):
    user_error = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", nargs="?", help="a bundle folder (a run's incidents/<session>-<turn>)")
    parser.add_argument("--target", default="", help="ws:// URL (default: the embedded simulator)")
    parser.add_argument("--repeat", type=int, default=1, help="replays to run (concurrently)")
    parser.add_argument("--rtf", type=float, default=None, help="real-time factor (default: the bundle's)")
    parser.add_argument("--dialect", default=None, help="override the bundle's dialect (ga|beta)")
    parser.add_argument("--format", dest="audio_format", default=None, help="override the bundle's format")
    parser.add_argument("--turn-timeout", type=float, default=15.0,
                        help="seconds a turn may wait for its answer (default 15, as harness run)")
    parser.add_argument("--auth", default="bearer", help="bearer (OpenAI, Entra), api-key (Azure key) or none, "
                                                         "as harness run")
    parser.add_argument("--api-key-env", default="",
                        help=f"environment variable holding the API key (default {DEFAULT_API_KEY_ENV}; required "
                             "to be set when given, and for any target off this machine unless --auth none)")
    parser.add_argument("--corpus", default=None, metavar="DIR",
                        help="the corpus to speak from (default: the one the run recorded, by its absolute path)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="where the replays' traces and replay.json go (default: a new temporary folder)")
    parser.add_argument("--sim-fault", action="append", default=[], help="fault for the embedded simulator")
    parser.add_argument("--sim-latency", action="append", default=[], help="STAGE=DIST for the embedded simulator")
    parser.add_argument("--anchor", default="events", choices=("events", "session"),
                        help="events: re-run the scenario, deciding on the new server events (default); "
                             "session: send the recorded audio and client events at their recorded offsets")
    parser.add_argument("--expect-reproduce", action="store_true", help="exit 1 unless every replay reproduced")
    parser.add_argument("--timeline-only", default=None, metavar="OUT.html", help="only render the timeline")
    parser.add_argument("--bundle-run", default=None, metavar="RUN_DIR", help="write RUN_DIR's incident bundles")
    parser.add_argument("--all", action="store_true",
                        help="with --bundle-run: a bundle for every incident (default: the first 20 of each cause)")


def _check(args: argparse.Namespace) -> None:
    if args.repeat < 1:
        raise ReplayOptionError(f"--repeat {args.repeat}: must be at least 1, e.g. 10")
    for option, value in (("--rtf", args.rtf), ("--turn-timeout", args.turn_timeout)):
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise ReplayOptionError(f"{option} {value:g}: must be a finite number > 0, e.g. "
                                    f"{'2' if option == '--rtf' else '15'}")
    if args.dialect not in (None, "ga", "beta"):
        raise ReplayOptionError(f"--dialect {args.dialect!r}: use ga or beta")
    if args.audio_format not in (None, "pcm16", "g711_ulaw", "g711_alaw"):
        raise ReplayOptionError(f"--format {args.audio_format!r}: use pcm16, g711_ulaw or g711_alaw")
    if args.target and not args.target.startswith(("ws://", "wss://")):
        raise ReplayOptionError(f"--target {args.target!r} is not a WebSocket URL; use ws://HOST:PORT/PATH or wss://...")
    for item in args.sim_latency:
        if "=" not in item:
            raise ReplayOptionError(f"--sim-latency {item!r}: use STAGE=DIST, e.g. first_audio=fixed:300")


@contextlib.contextmanager
def _target(args: argparse.Namespace, bundle: dict[str, Any]) -> Iterator[str]:
    if args.target:
        yield args.target
        return
    from harness.sim import SimConfig, start_in_thread
    from harness.sim.latency import LatencyModel

    latency: dict[str, str] = dict(item.split("=", 1) for item in args.sim_latency)
    corpora = []   # recognise the caller's utterances, as harness run's simulator does (none found: a tone)
    for name, recorded in ((args.corpus or str(bundle.get("corpus") or "default"), bundle.get("corpus_path")),
                           ("tools", None)):
        with contextlib.suppress(CorpusError):
            corpora.append(str(corpus_dir(name, None if args.corpus else recorded)))
    cfg = SimConfig(faults=list(args.sim_fault), corpus=corpora,
                    latency=LatencyModel().with_specs(latency) if latency else LatencyModel())
    with start_in_thread(cfg, host="127.0.0.1", port=0) as sim:
        yield sim.url


@contextlib.contextmanager
def _progress(what: str, every_s: float = 10.0) -> Iterator[None]:
    """While WHAT runs, `harness replay: WHAT: N s` (rewritten in place each second on a terminal,
    a plain line every `every_s` otherwise), and its time when it is done. Nothing when it fails
    at once (a bad bundle stays one line)."""
    stream = sys.stderr
    interactive = stream.isatty()
    started, stop = time.monotonic(), threading.Event()
    drawn: list[bool] = []

    def tick() -> None:
        while not stop.wait(1.0 if interactive else every_s):
            line = f"harness replay: {what}: {time.monotonic() - started:.0f} s"
            stream.write("\r" + line + "\x1b[K" if interactive else line + "\n")
            stream.flush()
            drawn.append(True)

    ticker = threading.Thread(target=tick, name="replay-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join(2.0)
        if drawn and interactive:
            stream.write("\n")
    print(f"harness replay: {what}: done in {time.monotonic() - started:.1f} s", file=stream, flush=True)


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms"


def _line(index: int, run_: dict[str, Any], original: dict[str, Any]) -> str:
    """`replay 0: reproduced: ...` or `replay 0: not reproduced: <why>`, never a bare None."""
    parts = [run_["why"]]
    ttfa, ttfa0 = run_.get("ttfa_ms"), original.get("ttfa_ms")
    if ttfa is not None and ttfa0 is not None:
        parts.append(f"ttfa {ttfa - ttfa0:+.1f} ms from the original")
    cut, cut0 = run_.get("cut_ms"), original.get("cut_ms")
    if cut is not None:
        parts.append(f"cut at {_ms(cut)}" + (f" (original {_ms(cut0)})" if cut0 is not None else ""))
    elif run_.get("reproduced") and cut0 is not None:
        parts.append(f"not cut (original cut at {_ms(cut0)})")
    return f"  replay {index}: {'reproduced' if run_.get('reproduced') else 'not reproduced'}: " + "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    if args.bundle_run:
        if not (Path(args.bundle_run) / "traces").is_dir():
            raise BundleError(f"--bundle-run {args.bundle_run}: not a run directory (no traces/); pass the folder "
                              "harness run wrote (reports/<RUN_ID>)")
        with _progress(f"writing the incident bundles of {args.bundle_run}"):
            bundles = write_incident_bundles(Path(args.bundle_run), per_cause=None if args.all else BUNDLES_PER_CAUSE)
        print(f"harness replay: wrote {len(bundles)} bundle(s) under {Path(args.bundle_run) / 'incidents'}")
        return 0
    if not args.bundle:
        raise BundleError("give a bundle folder (reports/RUN/incidents/SESSION-TURN) or --bundle-run RUN_DIR")
    bundle_dir = Path(args.bundle)
    bundle = load_bundle(bundle_dir)
    if bundle_dir.name == "bundle.json":
        bundle_dir = bundle_dir.parent
    if args.timeline_only:
        from harness.report import render_session_timeline

        render_session_timeline(bundle_trace(bundle_dir) or bundle_dir / PLAIN_TRACE_FILE, Path(args.timeline_only))
        print(f"harness replay: timeline {args.timeline_only}")
        return 0
    _check(args)
    if bundle["dialect"] == "live":
        raise BundleError(f"{bundle_dir}: replay of a Live bundle is not supported: a replay re-opens the recorded "
                          "session from its session.update and decides on Realtime server events (response ids, "
                          "speech_started, response.done) that Live does not send; rerun the scenario with "
                          "`harness run --dialect live` (or view it with --timeline-only)")
    # the same key rules as harness run, before anything starts: a named variable must be set, a
    # target off this machine needs a key unless --auth none (the embedded simulator is loopback)
    api_key_env = _check_api_key(args.target or "ws://127.0.0.1/v1/realtime", args.auth, args.api_key_env)
    with _target(args, bundle) as url, _progress(f"{args.repeat} replay(s) of {bundle_dir.name} "
                                                 f"(anchored on {args.anchor})"):
        outcome: dict[str, Any] = replay(bundle, url, repeat=args.repeat, rtf=args.rtf, dialect=args.dialect,
                                         fmt=args.audio_format, anchor=args.anchor, bundle_dir=bundle_dir,
                                         trace_dir=Path(args.out) if args.out else None, auth=args.auth,
                                         api_key_env=api_key_env, turn_timeout_s=args.turn_timeout,
                                         corpus=args.corpus)
    original = outcome["original"]
    trace_dir = Path(outcome["trace_dir"])
    (trace_dir / "replay.json").write_text(json.dumps({"bundle": str(bundle_dir), **outcome}, indent=2,
                                                      default=str), encoding="utf-8")
    for note in outcome["notes"]:
        print(f"note: {note}")
    print(f"incident {outcome['cause']!r} (turn {outcome['turn']}): recurred in {outcome['recurred']} of "
          f"{outcome['repeat']} replays (anchored on {args.anchor})")
    for index, run_ in enumerate(outcome["runs"]):
        print(_line(index, run_, original))
    print(f"traces: {trace_dir} (outcome in {trace_dir / 'replay.json'})")
    if not any(run_.get("streamed") for run_ in outcome["runs"]):
        return ExitCode.TARGET_FAILED
    if args.expect_reproduce and outcome["recurred"] < outcome["repeat"]:
        return ExitCode.GATE_FAILED
    return ExitCode.OK
