"""Read session traces back as records, tolerating a torn last line.

A trace is `NAME.jsonl` as the recorder writes it, or `NAME.jsonl.gz` once the run is assembled
(`harness.trace.archive`); both read the same, and a folder may hold some of each. A trace written
by a process that was killed can end in a half-written line (or, compressed, in a cut gzip
stream); that line is skipped and reported (`torn_tail`), never fatal. A file that is not a trace
at all raises `TraceFormatError` (one line, naming the file).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator


class TraceFormatError(ValueError):
    """The file is not a harness trace."""

    user_error = True


@dataclass
class Trace:
    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    footer: dict[str, Any] | None = None
    torn_tail: bool = False
    bad_lines: int = 0

    @property
    def complete(self) -> bool:
        return self.footer is not None and not self.torn_tail


PLAIN_SUFFIX, GZIP_SUFFIX = ".jsonl", ".jsonl.gz"
GZIP_MAGIC = b"\x1f\x8b"


def is_compressed(path: str | Path) -> bool:
    return str(path).endswith(GZIP_SUFFIX)


def trace_stem(path: str | Path) -> str:
    """The trace's name without `.jsonl` or `.jsonl.gz` (`<worker>-<session>` in a run directory)."""
    name = Path(path).name
    for suffix in (GZIP_SUFFIX, PLAIN_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def existing_trace(path: str | Path) -> Path | None:
    """`path` (a `.jsonl` name) as it is on disk: itself, else its `.jsonl.gz`; None when neither is."""
    plain = Path(path)
    if plain.is_file():
        return plain
    packed = plain.with_name(trace_stem(plain) + GZIP_SUFFIX)
    return packed if packed.is_file() else None


def _gunzip(data: bytes) -> tuple[bytes, bool]:
    """The decompressed bytes and whether the stream was cut short (a torn compressed trace)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(data)
    except zlib.error as exc:
        raise ValueError(f"not a gzip stream ({exc})") from None
    return text, not inflater.eof


def read_trace_text(path: str | Path) -> tuple[str, bool]:
    """The trace's text, plain or gzip-compressed (told by its first bytes), and whether a
    compressed stream was cut short. TraceFormatError when the file cannot be read."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TraceFormatError(f"{path}: cannot read trace ({exc.strerror}); check the path") from exc
    if not data.startswith(GZIP_MAGIC):
        return data.decode("utf-8", errors="replace"), False
    try:
        raw, cut = _gunzip(data)
    except ValueError as exc:
        raise TraceFormatError(f"{path}: a damaged compressed trace ({exc}); use the run's plain traces") from None
    return raw.decode("utf-8", errors="replace"), cut


def read_trace(path: str | Path) -> Trace:
    path = Path(path)
    text, cut = read_trace_text(path)
    lines = text.split("\n")
    ends_cleanly = text.endswith("\n") and not cut
    header: dict[str, Any] | None = None
    trace = Trace(path=path, header={})
    trace.torn_tail = cut
    for index, line in enumerate(lines):
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if index == len(lines) - 1 and not ends_cleanly:
                trace.torn_tail = True
            else:
                trace.bad_lines += 1
            continue
        if not isinstance(record, dict):
            trace.bad_lines += 1
            continue
        kind = record.get("rec")
        if kind == "header":
            header = record
        elif kind == "footer":
            trace.footer = record
        else:
            trace.records.append(record)
    if header is None:
        raise TraceFormatError(f"{path}: not a harness trace (no header line); pass a traces/ file")
    trace.header = header
    return trace


def read_header(path: str | Path) -> dict[str, Any] | None:
    """Only the header (the first line) of a trace: cheap, for picking traces out of many."""
    try:
        with open(path, "rb") as file:
            first = file.readline()
            if first.startswith(GZIP_MAGIC):
                file.seek(0)
                first = _first_line_gzip(file.read(1 << 16))
        record = json.loads(first.decode("utf-8", errors="replace"))
    except (OSError, ValueError, zlib.error):
        return None
    return record if isinstance(record, dict) and record.get("rec") == "header" else None


def _first_line_gzip(start: bytes) -> bytes:
    """The first line of a compressed trace from its first bytes (a header is a few kB)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    return inflater.decompress(start, 1 << 20).split(b"\n", 1)[0]


def iter_trace_files(directory: str | Path) -> Iterator[Path]:
    """Every trace under `directory` (`*.jsonl` and `*.jsonl.gz`), sorted by name; a trace present
    both ways (its compression was interrupted) is given once, as the plain file it came from."""
    found: dict[tuple[Path, str], Path] = {}
    for path in Path(directory).rglob("*.jsonl*"):
        if path.name.endswith(GZIP_SUFFIX) or path.suffix == PLAIN_SUFFIX:
            key = (path.parent, trace_stem(path) + PLAIN_SUFFIX)   # the order plain traces always had
            if key not in found or path.suffix == PLAIN_SUFFIX:
                found[key] = path
    yield from (found[key] for key in sorted(found))
