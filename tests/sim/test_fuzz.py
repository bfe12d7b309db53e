"""Fuzz: seeded adversarial clients throw malformed and out-of-order event sequences at the
simulator while a normal caller holds a session. The simulator answers with errors or closes
the offending connection with a policy code; it never raises inside a session (no
`internal_error` in its trace), and the normal caller's turn completes."""

from __future__ import annotations

import base64
import json
import random
import threading
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from harness.client import SessionSpec
from harness.protocol.catalogue import CLIENT_NAMES
from harness.scenarios import run_scenario
from harness.sim import SimConfig

FUZZ_CLIENTS = 6
MESSAGES_PER_CLIENT = 150
SEED = 20261124
CLOSE_CODES = {1000, 1008, 1009, 1011}  # normal, policy, too big, (never expected) internal


def _value(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value, biased to the awkward ones."""
    choice = rng.randrange(12 if depth < 3 else 10)
    if choice == 10:
        return [_value(rng, depth + 1) for _ in range(3)]
    if choice == 11:
        return {rng.choice(["type", "audio", "item", "session", "response", "event_id"]): _value(rng, depth + 1)}
    return [None, True, -1, 2**63, 1e308, "", "x" * rng.randrange(1, 5000), "\u0000\ud7ff<script>", [], {}][choice]


def _adversarial(rng: random.Random, types: list[str]) -> str | bytes:
    kind = rng.randrange(10)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 3000))                          # binary frame
    if kind == 1:
        return "{" * rng.randrange(1, 3) + rng.choice(["", "type", '"type":', "]]"])   # not JSON
    if kind == 2:
        return json.dumps(_value(rng))                                         # JSON, maybe not an object
    if kind == 3:
        return json.dumps({"type": rng.choice(types + ["x.y", "", "response.cancel.now"])})  # bare type
    if kind == 4:
        audio = base64.b64encode(rng.randbytes(rng.randrange(0, 20000))).decode()
        return json.dumps({"type": "input_audio_buffer.append", "audio": rng.choice([audio, audio[:-1] + "!", 5])})
    if kind == 5:
        return json.dumps({"type": "session.update", "session": _value(rng)})
    if kind == 6:
        return json.dumps({"type": "conversation.item.truncate", "item_id": _value(rng), "content_index": _value(rng),
                           "audio_end_ms": _value(rng)})
    if kind == 7:
        return json.dumps({"type": "conversation.item.create", "item": _value(rng), "previous_item_id": _value(rng)})
    if kind == 8:
        return json.dumps({"type": rng.choice(types), **{rng.choice(["response", "item_id", "event_id", "audio"]):
                                                        _value(rng) for _ in range(3)}})
    return json.dumps({"type": rng.choice(["input_audio_buffer.commit", "input_audio_buffer.clear",
                                           "response.create", "response.cancel", "output_audio_buffer.clear"])})


def _fuzz(url: str, seed: int, outcome: dict[str, Any]) -> None:
    rng = random.Random(seed)
    types = sorted(CLIENT_NAMES)
    errors = 0
    try:
        with connect(url, additional_headers={"Authorization": "Bearer sk-fuzz"}, open_timeout=10,
                     close_timeout=2, max_size=None) as ws:
            ws.recv(timeout=10)                                                # session.created
            for _ in range(MESSAGES_PER_CLIENT):
                ws.send(_adversarial(rng, types))
                while True:                                                    # drain without blocking
                    try:
                        event = json.loads(ws.recv(timeout=0.002))
                    except TimeoutError:
                        break
                    errors += event.get("type") == "error"
            outcome[seed] = ("survived", errors)
    except ConnectionClosed as exc:
        outcome[seed] = ("closed", exc.rcvd.code if exc.rcvd else None)


def test_adversarial_clients_get_errors_or_a_policy_close_and_a_normal_session_is_unaffected(
        sim_factory: Any, tmp_path: Path) -> None:
    sim = sim_factory(SimConfig(corpus=["corpora/default"]))
    outcome: dict[int, Any] = {}
    normal: dict[str, Any] = {}
    spec = SessionSpec(url=sim.url, turns=1, rtf=2.0, trace_dir=tmp_path, auth="none",
                       scenario_params={"utterances": ["default/utt11"]})
    threads = [threading.Thread(target=_fuzz, args=(sim.url, SEED + i, outcome), daemon=True)
               for i in range(FUZZ_CLIENTS)]
    threads.append(threading.Thread(target=lambda: normal.update(result=run_scenario(spec)), daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert len(outcome) == FUZZ_CLIENTS
    for seed, (how, detail) in outcome.items():
        if how == "survived":   # nearly every message is wrong; a few (a bare commit, a clear) are valid
            assert detail >= MESSAGES_PER_CLIENT // 2, f"seed {seed}: only {detail} error events"
        else:
            assert detail in CLOSE_CODES - {1011}, f"seed {seed}: closed with {detail}"
    internal = [r for r in sim.trace.records if r["rec"] == "internal_error"]
    assert not internal, internal[:3]
    assert normal["result"].turns_ok == 1, normal["result"]
