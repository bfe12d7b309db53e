"""A real browser drives Locust's web UI: harness options set in the form, the Realtime tab
updating, the stop, and each test's own complete run directory.

Headless Chromium through Playwright, against plain Locust (`locust -f locustfile.py`, its web UI
on 127.0.0.1) and a separately started simulator. Screenshots of the form and of the Realtime tab
go to benchmarks/results/. Skipped, saying why, only where Playwright or Chromium is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from .runs import REPO, closed_port, records, turns_in_traces
from .test_distributed import sim_url  # noqa: F401 - the fixture: `harness sim` on a free loopback port

pytestmark = pytest.mark.slow
SHOTS = REPO / "benchmarks" / "results"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _wait_for(what: str, check: Callable[[], Any], timeout_s: float) -> Any:
    """Poll `check` (bounded in time) until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _post(url: str, form: dict[str, str]) -> Any:
    data = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in form.items()).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=30) as answer:
        return json.loads(answer.read())


def _up(url: str) -> bool:
    try:
        _get_json(url + "/realtime")
        return True
    except OSError:
        return False


@pytest.fixture
def web_ui(sim_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:  # noqa: F811 - the imported fixture
    port = closed_port()
    log = (tmp_path / "locust.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "locust", "-f", "locustfile.py", "--web-port", str(port),
                             "--target", sim_url, "--out", str(tmp_path / "cli-out"), "--pacing-limit-ms", "100",
                             "--lateness-limit-ms", "200"],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for("the web UI", lambda: _up(url) or proc.poll() is not None, 60)
        assert proc.poll() is None, (tmp_path / "locust.log").read_text()[-2000:]
        yield url, tmp_path
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _assembled(url: str) -> bool:
    """The test's run directory is written (the Realtime board says so, with the exit code)."""
    return str(_get_json(url + "/realtime")["message"]).startswith("assembled: exit code")


def _complete(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "summary.json").read_text())
    for name in ("report.html", "turns.parquet", "junit.xml", "run.json", "users.csv"):
        assert (run_dir / name).is_file(), name
    assert {(r["session_id"], r["turn"]) for r in records(run_dir)} == turns_in_traces(run_dir)
    return summary


def test_a_browser_starts_a_test_with_harness_options_sees_the_realtime_tab_and_finds_its_run_directory(
        web_ui: tuple[str, Path]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    url, tmp = web_ui
    assert "Starting web interface at http://127.0.0.1:" in (tmp / "locust.log").read_text()   # loopback by default
    run_dir = tmp / "ui-run"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(dir=tmp), executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1100})
        try:
            page = browser.new_page()
            page.goto(url + "/")
            assert page.input_value("input[name=host]").startswith("ws://127.0.0.1:")   # the target
            page.fill("input[name=userCount]", "2")
            page.fill("input[name=spawnRate]", "2")
            page.get_by_text("Custom parameters").click()
            page.fill("input[name=turns]", "2")
            page.fill("input[name=out]", str(run_dir))
            page.select_option("select[name=audioFormat]", "g711_ulaw")
            page.screenshot(path=str(SHOTS / "webui_form.png"), full_page=True)
            page.get_by_role("button", name="Start").click()
            page.get_by_role("tab", name="Realtime").click()
            ttfa_row = page.locator("tr", has_text="ttfa_ms")
            _wait_for("a ttfa_ms turn on the Realtime tab",
                      lambda: ttfa_row.count() and ttfa_row.first.inner_text().split("\t")[1].strip() not in ("", "0"),
                      90)
            page.screenshot(path=str(SHOTS / "webui_realtime.png"), full_page=True)
            shown = ttfa_row.first.inner_text().split("\t")
            page.get_by_role("button", name="Stop").click()
            _wait_for("the run directory", lambda: _assembled(url), 90)
            summary = _complete(run_dir)
        finally:
            browser.close()
    assert float(shown[2]) > 0   # the tab showed an exact p50 of the test's own turns
    run = json.loads((run_dir / "run.json").read_text())
    assert run["format"] == "g711_ulaw" and run["turns"] == 2   # the form's options reached the callers
    statuses = {r["status"] for r in records(run_dir)}
    assert summary["turns"]["total"] >= 1 and "ok" in statuses and "error" not in statuses, statuses
    assert not (tmp / "cli-out").exists()   # the form's --out won

    # A second test from the same form values never writes into the first one's directory.
    answer = _post(url + "/swarm", {"user_count": "1", "spawn_rate": "1", "host": run["target"],
                                    "out": str(run_dir), "turns": "1"})
    assert answer["success"], answer
    second = Path(_wait_for("the second test's run directory",
                            lambda: (out := _get_json(url + "/realtime")["out"]) != str(run_dir) and out, 30))
    assert second != run_dir and second.parent == run_dir.parent
    _wait_for("a turn of the second test", lambda: _get_json(url + "/realtime")["turns"], 60)
    _post(url + "/stop", {})
    _wait_for("the second run directory", lambda: _assembled(url), 90)
    assert _complete(second)["turns"]["total"] >= 1
    assert json.loads((run_dir / "summary.json").read_text()) == summary   # the first one untouched

    # A bad value in the form: no test, its one line on the Realtime board.
    assert _post(url + "/swarm", {"user_count": "1", "spawn_rate": "1", "host": run["target"],
                                  "scenario": "telepathy:1"})["success"]
    refused = _wait_for("the refusal", lambda: (m := _get_json(url + "/realtime")["message"]).startswith(
        "not started:") and m, 30)
    assert "unknown scenario 'telepathy'" in refused
    _wait_for("the refused test to stop", lambda: _get_json(url + "/stats/requests")["state"] == "stopped", 30)
