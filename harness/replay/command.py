"""`harness replay BUNDLE`: reproduce a recorded incident against a target or the simulator.

    harness replay reports/RUN/incidents/SESSION-TURN --repeat 10 [--target URL] [--sim-fault ...]
    harness replay reports/RUN/incidents/SESSION-TURN --anchor session   # recorded offsets, no decisions
    harness replay reports/RUN/incidents/SESSION-TURN --timeline-only timeline.html
    harness replay --bundle-run reports/RUN [--all]  # (re)write the run's incident bundles

Exit 0 when the replay ran; with `--expect-reproduce`, 1 unless the cause recurred every time.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any, Iterator

from harness.replay.bundle import BUNDLES_PER_CAUSE, BundleError, write_incident_bundles
from harness.replay.replay import load_bundle, replay


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", nargs="?", help="a bundle folder (a run's incidents/<session>-<turn>)")
    parser.add_argument("--target", default="", help="ws:// URL (default: the embedded simulator)")
    parser.add_argument("--repeat", type=int, default=1, help="replays to run (concurrently)")
    parser.add_argument("--rtf", type=float, default=None, help="real-time factor (default: the bundle's)")
    parser.add_argument("--dialect", default=None, help="override the bundle's dialect (ga|beta)")
    parser.add_argument("--format", dest="audio_format", default=None, help="override the bundle's format")
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


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[str]:
    if args.target:
        yield args.target
        return
    from harness.sim import SimConfig, start_in_thread
    from harness.sim.latency import LatencyModel

    latency: dict[str, str] = dict(item.split("=", 1) for item in args.sim_latency)
    cfg = SimConfig(faults=list(args.sim_fault), corpus=["corpora/default", "corpora/tools"],
                    latency=LatencyModel().with_specs(latency) if latency else LatencyModel())
    with start_in_thread(cfg, host="127.0.0.1", port=0) as sim:
        yield sim.url


def run(args: argparse.Namespace) -> int:
    if args.bundle_run:
        bundles = write_incident_bundles(Path(args.bundle_run), per_cause=None if args.all else BUNDLES_PER_CAUSE)
        print(f"harness replay: wrote {len(bundles)} bundle(s) under {Path(args.bundle_run) / 'incidents'}")
        return 0
    if not args.bundle:
        raise BundleError("give a bundle folder (reports/RUN/incidents/SESSION-TURN) or --bundle-run RUN_DIR")
    bundle = load_bundle(Path(args.bundle))
    if args.timeline_only:
        from harness.report import render_session_timeline

        render_session_timeline(Path(args.bundle) / "trace.jsonl", Path(args.timeline_only))
        print(f"harness replay: timeline {args.timeline_only}")
        return 0
    with _target(args) as url:
        outcome: dict[str, Any] = replay(bundle, url, repeat=args.repeat, rtf=args.rtf, dialect=args.dialect,
                                         fmt=args.audio_format, anchor=args.anchor, bundle_dir=Path(args.bundle))
    original = outcome["original"]
    print(f"incident {outcome['cause']!r}: recurred in {outcome['recurred']} of {outcome['repeat']} replays "
          f"(anchored on {args.anchor})")
    for index, run_ in enumerate(outcome["runs"]):
        ttfa = run_["ttfa_ms"]
        delta = "" if ttfa is None or original["ttfa_ms"] is None else f" (ttfa {ttfa - original['ttfa_ms']:+.1f} ms)"
        print(f"  replay {index}: {run_['incident'] or 'no incident'}{delta}  cut at {run_['cut_ms']} ms "
              f"(original {original['cut_ms']} ms)")
    if args.expect_reproduce and outcome["recurred"] < outcome["repeat"]:
        return 1
    return 0
