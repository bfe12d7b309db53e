"""Progress of `harness report` and `harness compare` on stderr: a live line on a terminal, plain
lines in a CI log ("report: building figures ...", "report: 12 timelines ...")."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`step(text)` says what is being done now; `done(text)` ends the line with the result."""

    def __init__(self, label: str, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.started = time.monotonic()
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._open = False

    def _line(self, text: str) -> str:
        return f"{self.label}: {text} ({time.monotonic() - self.started:.1f} s)"

    def step(self, text: str) -> None:
        if self.quiet:
            return
        if self.interactive:   # redrawn in place, cleared to the end of the line
            self.stream.write("\r\033[K" + self._line(text))
            self._open = True
        else:
            self.stream.write(self._line(text) + "\n")
        self.stream.flush()

    def done(self, text: str) -> None:
        if self.quiet:
            return
        prefix = "\r\033[K" if self.interactive and self._open else ""
        self.stream.write(prefix + self._line(text) + "\n")
        self.stream.flush()
        self._open = False
