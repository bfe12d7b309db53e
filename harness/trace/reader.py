"""Read session traces back as records, tolerating a torn last line.

A trace written by a process that was killed can end in a half-written line; that line is
skipped and reported (`torn_tail`), never fatal. A file that is not a trace at all raises
`TraceFormatError` (one line, naming the file).
"""

from __future__ import annotations

import json
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


def read_trace(path: str | Path) -> Trace:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TraceFormatError(f"{path}: cannot read trace ({exc.strerror}); check the path") from exc
    lines = text.split("\n")
    ends_cleanly = text.endswith("\n")
    header: dict[str, Any] | None = None
    trace = Trace(path=path, header={})
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
        with open(path, encoding="utf-8", errors="replace") as file:
            first = file.readline()
        record = json.loads(first)
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("rec") == "header" else None


def iter_trace_files(directory: str | Path) -> Iterator[Path]:
    """Every `*.jsonl` trace under `directory`, sorted by name."""
    yield from sorted(Path(directory).rglob("*.jsonl"))
