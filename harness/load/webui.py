"""The harness in Locust's web UI: a Realtime tab, a JSON route, per-test shapes, a loopback default.

Locust's documented extension points (its `examples/extend_web_ui.py`, Locust 2.2x+):
`web_ui.template_args["extended_tabs"]` / `["extended_tables"]` add the tab and its table; the
table's rows ride on Locust's own `/stats/requests` answer (`extended_stats`), which the page
polls every 2 s, so the tab refreshes itself. `/realtime` gives the same board as JSON.

A shape chosen in the form (`--shape`) must be in place before Locust's `/swarm` handler looks
for `environment.shape_class`, so a `before_request` hook sets it from the submitted form (a bad
one is refused with its one line, like Locust's own form errors).
"""

from __future__ import annotations

import json
from typing import Any

from harness.load.board import LiveBoard
from harness.load.options import LoadSettingsError
from harness.load.shape_class import locust_shape
from harness.load.shapes import parse_shape

TAB_KEY = "realtime"
LOOPBACK = "127.0.0.1"
_COLUMNS = (("name", "Realtime"), ("count", "Count"), ("p50", "p50"), ("p95", "p95"), ("p99", "p99"),
            ("detail", "Detail"))


def bind_web_ui_to_loopback(parser: Any) -> None:
    """Locust's `--web-host` defaults to every interface; the harness's default is 127.0.0.1
    (`--web-host '*'` or LOCUST_WEB_HOST restores Locust's)."""
    for action in getattr(parser, "_actions", []):
        if action.dest == "web_host":
            action.default = LOOPBACK
            action.help = f"Host to bind the web interface to (the harness's default {LOOPBACK}; '*' for all)"


def install(environment: Any, board: LiveBoard) -> None:
    web_ui = environment.web_ui
    if web_ui is None:
        return
    from flask import jsonify, request

    web_ui.template_args["extended_tabs"] = [{"title": "Realtime", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB_KEY, "structure": [{"key": key, "title": title} for key, title in _COLUMNS]}]

    @web_ui.app.after_request
    def _with_board(response: Any) -> Any:
        if not request.path.endswith("/stats/requests") or response.status_code != 200:
            return response
        data = response.get_json(silent=True)
        if isinstance(data, dict):
            data["extended_stats"] = [{"key": TAB_KEY, "data": board.rows()}]
            response.set_data(json.dumps(data))
        return response

    @web_ui.app.route("/realtime")
    def _realtime() -> Any:
        return jsonify(board.snapshot())

    @web_ui.app.before_request
    def _shape_from_form() -> Any:
        if request.method != "POST" or not request.path.endswith("/swarm") or "shape" not in request.form:
            return None
        try:
            plan = parse_shape(request.form["shape"])
        except LoadSettingsError as exc:
            return jsonify({"success": False, "message": str(exc), "host": environment.host})
        environment.shape_class = None if plan is None else locust_shape(plan, environment)
        return None
