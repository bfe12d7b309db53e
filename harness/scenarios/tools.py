"""`function_call`: the session declares tools; the caller runs them locally when asked.

Each turn speaks a tool request (default: the `tools` corpus). When the answering response ends
with `response.function_call_arguments.done`, the caller waits `tool_delay_ms` (its "backend"
latency) counted from that event, runs the local function, sends the result as a
`function_call_output` item, then `response.create` (only after the calling response is done:
the service refuses a second active response), and follows the spoken follow-up to the end of
its playout. A turn whose response calls no tool is followed like a plain turn.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

from harness.client.driver import Session
from harness.protocol import Kind
from harness.scenarios.base import TurnWatch, follow_turn, think, turn_budget_s
from harness.trace.vocabulary import Mark

if TYPE_CHECKING:
    from harness.scenarios import Setup

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "name": "get_weather", "description": "Current weather and forecast for a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "when": {"type": "string"}},
                    "required": ["city"]}},
    {"type": "function", "name": "lookup_order", "description": "Status of an order by its number.",
     "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}},
]


def _get_weather(args: dict[str, Any]) -> dict[str, Any]:
    return {"city": args.get("city", "unknown"), "when": args.get("when", "now"), "sky": "sunny", "temp_c": 21}


def _lookup_order(args: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": args.get("order_id", "unknown"), "status": "shipped", "eta_days": 2}


LOCAL_FUNCTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "get_weather": _get_weather,
    "lookup_order": _lookup_order,
}


def call_local(name: str, arguments: str) -> str:
    """The tool's output as the JSON string `function_call_output` carries."""
    try:
        args = json.loads(arguments) if arguments else {}
    except ValueError:
        return json.dumps({"error": "arguments are not valid JSON"})
    function = LOCAL_FUNCTIONS.get(name)
    if function is None or not isinstance(args, dict):
        return json.dumps({"error": f"no such tool: {name}"})
    return json.dumps(function(args))


def run_function_call(session: Session, setup: Setup) -> None:
    spec, params = setup.spec, setup.params
    delay_s = float(params["tool_delay_ms"]) / 1000.0
    for clip in setup.clips:
        turn = session.speak(clip, "response")
        watch = TurnWatch(session, turn)
        if follow_turn(session, watch, turn_budget_s(spec, clip.audio_ms), wait_playout=False) != "ok":
            continue
        state = session.response(watch.response_id)
        calls = state.function_calls if state is not None else []
        if calls:
            for call in calls:
                wait_s = delay_s - (session.now_ns() - int(call["received_ns"])) / 1e9
                if wait_s > 0:
                    session.pause(wait_s)
                output = call_local(str(call.get("name")), str(call.get("arguments") or ""))
                session.send(Kind.ITEM_CREATE,
                             item={"type": "function_call_output", "call_id": call.get("call_id"), "output": output},
                             mark=Mark.FUNCTION_OUTPUT_SENT, mark_fields={"turn": turn, "call_id": call.get("call_id")})
            session.send(Kind.RESPONSE_CREATE, mark=Mark.RESPONSE_CREATE_SENT, mark_fields={"turn": turn})
            watch = TurnWatch(session, turn, follow_up=True)
            if follow_turn(session, watch, spec.turn_timeout_s) != "ok":
                continue
        elif follow_turn(session, watch, spec.turn_timeout_s) != "ok":
            continue
        session.end_turn(turn, "ok")
        think(session, params)
