"""A plain progress bar on stderr for long corpus jobs (TTS, annotation of many files)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TextIO, TypeVar

T = TypeVar("T")
WIDTH = 30


def progress(items: Iterable[T], label: str, *, total: int | None = None, stream: TextIO | None = None) -> Iterator[T]:
    """Yield `items`, drawing `label [####      ] i/n` on stderr (redrawn in place on a terminal,
    one line per tenth otherwise, so CI logs stay short)."""
    out = stream or sys.stderr
    count = total if total is not None else (len(items) if isinstance(items, Sized) else 0)
    interactive = out.isatty()
    started = time.monotonic()
    last_tenth = -1
    done = 0

    def draw(final: bool = False) -> None:
        nonlocal last_tenth
        filled = WIDTH * done // count if count else WIDTH
        line = (
            f"{label} [{'#' * filled}{' ' * (WIDTH - filled)}] {done}/{count or '?'} {time.monotonic() - started:.1f}s"
        )
        if interactive:
            out.write("\r" + line + ("\n" if final else ""))
        else:
            tenth = 10 * done // count if count else 10
            if tenth == last_tenth and not final:
                return
            last_tenth = tenth
            out.write(line + "\n")
        out.flush()

    if count == 0:
        yield from items
        return
    for item in items:
        yield item
        done += 1
        if done < count:
            draw()
    draw(final=True)
