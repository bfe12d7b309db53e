"""Open a report in headless Chromium, offline, and say whether it rendered cleanly.

Used by the browser test and by `benchmarks/report_build.py` (which keeps a screenshot). The
browser gets no network: every host name resolves to nothing and every request goes to a
closed proxy port, so a page that needed a CDN would fail to draw and log an error. Console
messages (Chromium logs them as `INFO:CONSOLE` with `--enable-logging=stderr`) are collected:
a clean page logs none.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
OFFLINE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
)
_CONSOLE = re.compile(r":INFO:CONSOLE[^\]]*\]\s*(.*)")


@dataclass
class BrowserResult:
    returncode: int
    dom: str
    console: list[str] = field(default_factory=list)
    stderr: str = ""

    @property
    def figures_drawn(self) -> int:
        """Plotly figures that finished drawing (each gets one plot-container with its SVG)."""
        return self.dom.count('class="plot-container')


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def render_offline(html_path: str | Path, screenshot: str | Path | None = None, width: int = 1400,
                   height: int = 3000, timeout_s: float = 90.0) -> BrowserResult:
    """Load `html_path` from file:// with no network; DOM after scripts ran, console messages, and a PNG."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found; install Debian's chromium package")
    url = Path(html_path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="report-browser-") as profile:
        base = [chromium, *OFFLINE_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        dumped = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=timeout_s)
        stderr = dumped.stderr
        if screenshot is not None:
            shot = subprocess.run([*base, f"--screenshot={Path(screenshot).resolve()}", url], capture_output=True,
                                  text=True, timeout=timeout_s)
            stderr += shot.stderr
    console = [m.group(1) for m in map(_CONSOLE.search, stderr.splitlines()) if m]
    return BrowserResult(returncode=dumped.returncode, dom=dumped.stdout, console=console, stderr=stderr)
