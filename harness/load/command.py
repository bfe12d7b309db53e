"""`harness run`: a headless Locust run against a target or the embedded simulator.

With no `--target` it starts the simulator in its own process on a free loopback port (its
own core and GIL, as a real target would be; `--sim-processes N` serves it from N processes),
runs Locust headless in a child process, stops the simulator, and assembles the run directory
itself (so a Locust process that dies still leaves a complete run directory). The simulator's
settings go into run.json and summary.json, and its own lateness against its latency model is a
gate: over `--sim-lateness-limit-ms` the run exits 5, because what it measured was the
simulator's overload, not a target's latency. Ctrl-C and SIGTERM are passed to Locust, which stops
the users cleanly; everything recorded until then is written. A second one (or one during the
assembly) stops Locust at once and leaves the run directory as it is, saying how to complete it
(`harness finalize DIR`, from `run.json`, written when the run starts, and the traces).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

from harness.exit_codes import ExitCode
from harness.load.options import STOP_TIMEOUT_S, LoadSettings, add_harness_options, check_options, new_run_id
from harness.load.progress import PROGRESS_DIR_ENV, PROGRESS_FOLDER, STATUS_EVERY_S, LiveStatus
from harness.load.slo import load_slos
from harness.load.run_info import run_info
from harness.rundir import assembly_progress, finalize_run, summary_table

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-u", "--users", type=int, default=10, help="peak number of callers (default 10)")
    parser.add_argument("-r", "--spawn-rate", type=float, default=5.0, help="callers started per second")
    parser.add_argument("-t", "--run-time", default="30s", help="duration, e.g. 30s, 5m, 1h")
    parser.add_argument("--processes", type=int, default=0, help="Locust worker processes on this machine")
    parser.add_argument("--sim-latency", action="append", default=[], help="simulator latency, STAGE=DIST")
    parser.add_argument("--sim-fault", action="append", default=[], help="simulator fault, KIND[:k=v,...]")
    parser.add_argument("--sim-config", default=None, help="simulator TOML file")
    parser.add_argument("--sim-processes", type=int, default=None,
                        help="processes serving the embedded simulator's port (default 1, or the TOML file's)")
    parser.add_argument("--sim-lateness-limit-ms", type=float,
                        default=float(os.environ.get("HARNESS_SIM_LATENESS_LIMIT_MS", "5")),
                        help="simulator gate: its p99 lateness against its own latency model (every send and "
                             "decision); over it the run exits 5 (default 5, or $HARNESS_SIM_LATENESS_LIMIT_MS)")
    parser.add_argument("--no-report", action="store_true", help="skip report.html (tables and summary only)")
    parser.add_argument("--progress-every-s", type=float, default=10.0,
                        help="the live status line: rewritten each second on a terminal; elsewhere (CI logs) a "
                             "plain line every S seconds (default 10; 0: no status line)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing run directory at --out (without it, a non-empty --out is refused)")
    add_harness_options(parser)


class _Options:
    """The subset of Locust's parsed options LoadSettings reads."""

    def __init__(self, args: argparse.Namespace, target: str) -> None:
        self.__dict__.update(vars(args))
        self.target, self.host = target, ""


class _Embedded:
    """What `harness run` knows of the simulator it started (None values with --target)."""

    def __init__(self) -> None:
        self.url = ""
        self.sim: Any = None
        self.settings: dict[str, Any] | None = None

    def report(self, limit_ms: float) -> dict[str, Any] | None:
        """For finalize_run: settings, lateness (read after the simulator stopped) and the limit."""
        if self.sim is None:
            return None
        from harness.sim.lateness import headline

        return {"settings": self.settings, "lateness": headline(self.sim.lateness()), "lateness_limit_ms": limit_ms}


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[_Embedded]:
    embedded = _Embedded()
    if args.target:
        embedded.url = args.target
        yield embedded
        return
    from harness.sim import SimConfig
    from harness.sim.process import start_in_process

    cfg = SimConfig.from_toml(args.sim_config) if args.sim_config else SimConfig()
    overrides: dict[str, Any] = {}
    if not cfg.corpus:  # recognise the callers' utterances (transcripts, tool requests) by their audio
        overrides["corpus"] = [c for c in (args.corpus, corpus_folder("corpora/tools")) if Path(c, "manifest.json").is_file()]
    if args.sim_latency:
        specs = {}
        for item in args.sim_latency:
            stage, _, dist = item.partition("=")
            specs[stage.strip()] = dist.strip()
        overrides["latency"] = cfg.latency.with_specs(specs)
    if args.sim_fault:
        from harness.sim.faults import FaultPlan

        overrides["faults"] = FaultPlan(cfg.faults.faults + FaultPlan.parse(args.sim_fault).faults)
    if args.sim_processes is not None:
        overrides["processes"] = args.sim_processes
    if overrides:
        cfg = cfg.with_overrides(**overrides)
    embedded.settings = cfg.describe()
    with start_in_process(cfg, keep_records=False) as sim:
        shown = f" ({cfg.processes} processes)" if cfg.processes > 1 else ""
        print(f"harness run: embedded simulator at {sim.url}{shown}", flush=True)
        embedded.url, embedded.sim = sim.url, sim
        yield embedded


def _locust_command(args: argparse.Namespace, settings: LoadSettings) -> list[str]:
    out = settings.out
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
           "-u", str(args.users), "-r", str(args.spawn_rate), "-t", args.run_time, "-s", f"{STOP_TIMEOUT_S:g}",
           "--csv", str(out / "stats"), "--loglevel", "WARNING",   # no --html: report.html draws its history
           "--target", settings.target, "--dialect", settings.dialect, "--format", settings.fmt,
           "--corpus", settings.corpus, "--scenario", args.scenario, "--scenario-params", args.scenario_params,
           "--turns", str(settings.turns), "--chunk-ms", str(settings.chunk_ms), "--rtf", str(settings.rtf),
           "--turn-timeout", str(settings.turn_timeout_s), "--lateness-limit-ms", str(settings.lateness_limit_ms),
           "--vad-fallback", settings.vad_fallback, "--rtt-interval-s", str(settings.rtt_interval_s),
           "--pacing-limit-ms", str(settings.pacing_limit_ms), "--out", str(out), "--run-id", settings.run_id,
           "--auth", settings.auth]
    if args.api_key_env:   # only when named: an implicit default must not become an explicit requirement
        cmd += ["--api-key-env", args.api_key_env]
    if args.processes:
        cmd += ["--processes", str(args.processes)]
    if args.shape:   # checked by check_options; Locust's side builds the LoadTestShape
        cmd += ["--shape", args.shape]
    return cmd


def corpus_folder(given: str) -> str:
    """`--corpus` as an absolute folder, found wherever `harness run` was started (a folder, or a
    shipped corpus's name: harness.corpus.resolve_corpus_dir); unchanged when none fits (the
    settings check then names it)."""
    from harness.corpus.loader import CorpusError, resolve_corpus_dir

    try:
        return str(resolve_corpus_dir(given).resolve())
    except CorpusError:
        return given


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    """Locust, told to stop now: SIGTERM, then SIGKILL after a few seconds (its traces were flushed as they went)."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(5.0)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(5.0)


def claim_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty --out (two runs' turns would merge into one table), unless --overwrite
    and it is a run directory (it holds run.json), whose contents are then removed; a non-empty
    folder that is no run directory is never emptied."""
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputDirError(f"--out {out}: a file, not a folder; choose a new or empty folder")
    entries = list(out.iterdir())
    if not entries:
        return
    if not overwrite:
        raise OutputDirError(f"--out {out}: not empty (it holds {len(entries)} entries, e.g. {entries[0].name}); "
                             "choose a new folder, or pass --overwrite to replace the run directory there")
    if not (out / "run.json").is_file():
        raise OutputDirError(f"--out {out}: not empty and not a run directory (no run.json), so --overwrite "
                             "will not empty it; choose a new or empty folder")
    import shutil

    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _wrote_anything(out: Path) -> bool:
    return any(any(p.iterdir()) for p in (out / "traces", out / "records") if p.is_dir())


def run(args: argparse.Namespace) -> int:
    check_options(args)  # a bad number fails now: no simulator, no Locust, no run directory
    run_id = args.run_id or new_run_id()
    args.run_id = run_id
    settings = LoadSettings.from_options(_Options(args, args.target or "ws://127.0.0.1:1/v1/realtime"))
    args.corpus = settings.corpus   # resolved by the settings (a folder or a shipped corpus's name)
    load_slos(settings.slos)  # a bad SLO or corpus fails now, before anything starts
    from harness.corpus import load_corpus

    load_corpus(settings.corpus)
    out = settings.out
    claim_out_dir(out, args.overwrite)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".write-test").write_text("", encoding="utf-8")
        (out / ".write-test").unlink()
    except OSError as exc:
        raise OutputDirError(f"--out {out}: cannot write there ({exc.strerror}); choose a writable folder") from None
    try:
        code, summary = _run_and_assemble(args, settings)
    except KeyboardInterrupt:
        # A second Ctrl-C (or one during assembly): stop now, and say how to finish the directory.
        if _wrote_anything(out):
            print(f"harness run: run directory incomplete: complete it with `harness finalize {out}`",
                  file=sys.stderr, flush=True)
        else:
            print("harness run: interrupted before anything was written", file=sys.stderr, flush=True)
        return ExitCode.INTERRUPTED
    print(summary_table(summary))
    message = (summary.get("simulator") or {}).get("message")
    if message:
        print(f"harness run: {message}", file=sys.stderr, flush=True)
    print(f"harness run: report {out / 'report.html'}" if not args.no_report else f"harness run: {out}")
    aborted = _aborted(out)
    if aborted is not None and aborted.get("exit_code"):   # the Locust side stopped the run: say why once
        print(f"harness run: {aborted.get('message')}", file=sys.stderr)
        return int(aborted["exit_code"])
    nothing_ran = summary["turns"]["total"] == 0 and summary["sessions"]["total"] == 0
    if code not in (ExitCode.OK, ExitCode.GATE_FAILED) and nothing_ran:
        print(f"harness run: locust exited with {code} before any session ran", file=sys.stderr)
        return ExitCode.INTERNAL
    return int(summary["exit_code"])


def _aborted(out: Path) -> dict[str, Any] | None:
    """What a Locust process wrote when it stopped the run itself (a bad spec, a repeating bug)."""
    try:
        found = json.loads((out / "aborted.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _wait_showing_progress(child: subprocess.Popen[bytes], live: LiveStatus) -> int:
    """Locust's exit code; meanwhile the status line, about once a second."""
    while True:
        try:
            code = child.wait(timeout=STATUS_EVERY_S)
        except subprocess.TimeoutExpired:
            live.tick()
            continue
        live.close()
        return code


def _run_and_assemble(args: argparse.Namespace, settings: LoadSettings) -> tuple[int, dict[str, Any]]:
    """Locust in a child process, then the run directory. The first Ctrl-C/SIGTERM is passed to
    Locust (it stops the users, everything recorded is kept); a second one raises
    KeyboardInterrupt here, after Locust is told to stop now."""
    out = settings.out
    with _target(args) as embedded:
        settings.target = embedded.url
        # written first, so `harness finalize` knows the run's settings if the assembly never happens
        info = run_info(settings, args.users, args.spawn_rate, args.run_time, options=vars(args),
                        simulator=embedded.settings)
        (out / "run.json").write_text(json.dumps({**info, "finished_at": None}, indent=2, default=str),
                                      encoding="utf-8")
        cmd = _locust_command(args, settings)
        progress_dir = out / PROGRESS_FOLDER
        env = {**os.environ, "HARNESS_FINALIZE": "0", PROGRESS_DIR_ENV: str(progress_dir)}
        child = subprocess.Popen(cmd, env=env)
        live = LiveStatus(progress_dir, every_s=args.progress_every_s)
        signals: list[int] = []

        def on_signal(sig: int, _frame: Any) -> None:
            signals.append(sig)
            if len(signals) > 1:
                raise KeyboardInterrupt
            child.send_signal(sig)
            print("harness run: stopping (the run directory will be written; Ctrl-C again to stop at once)",
                  file=sys.stderr, flush=True)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            code = _wait_showing_progress(child, live)
        except KeyboardInterrupt:
            _stop_child(child)
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    info = run_info(settings, args.users, args.spawn_rate, args.run_time, options=vars(args))
    summary = finalize_run(out, info, settings.slos, settings.pacing_limit_ms, build_html=not args.no_report,
                           simulator=embedded.report(args.sim_lateness_limit_ms),
                           progress=assembly_progress("harness run", quiet=args.progress_every_s <= 0))
    return code, summary


class OutputDirError(ValueError):
    user_error = True
