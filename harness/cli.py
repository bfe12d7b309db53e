"""The `harness` command line: one table of subcommands, each implemented in its own package.

Only the chosen subcommand's module is imported, so `harness sim` never pays for pandas and
`harness --help` stays fast. A subcommand module provides `add_arguments(parser)` and
`run(args) -> int`.

Errors meant for the user carry `user_error = True` (duck-typed, so the leaf packages need not
import anything from here); they are printed as one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from harness import __version__
from harness.exit_codes import ExitCode

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("harness.load.command", "run a load test (embedded simulator unless --target) and write a run directory"),
    "sim": ("harness.sim.command", "start the embedded Realtime simulator"),
    "report": ("harness.report.command_report", "rebuild RUN_DIR/report.html from the run's files"),
    "compare": ("harness.report.command_compare", "compare two runs; non-zero exit on regression"),
    "replay": ("harness.replay.command", "re-drive a recorded session (repro bundle) against a target"),
    "finalize": ("harness.finalize", "complete an interrupted run directory from its records and traces"),
    "metrics": ("harness.metrics.command", "per-turn table and summary for a folder of traces (offline)"),
    "corpus": ("harness.corpus.command", "annotate, build and check speech corpora"),
}


def _build_parser(chosen: str | None) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Load-testing and diagnostics harness for OpenAI-Realtime-style voice pipelines.",
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, object] = {}
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name != chosen:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                modules[name] = None  # not built yet
                continue
            raise
        module.add_arguments(sub)  # type: ignore[attr-defined]
        modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    parser, modules = _build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return ExitCode.BAD_INPUT
    module = modules.get(args.command)
    if module is None:
        print(f"harness {args.command}: not built yet in this version", file=sys.stderr)
        return ExitCode.BAD_INPUT
    try:
        return int(module.run(args))  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
        if getattr(exc, "user_error", False):
            print(f"harness {args.command}: error: {exc}", file=sys.stderr)
            return ExitCode.BAD_INPUT
        raise
