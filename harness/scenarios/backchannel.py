"""`backchannel`: does "mm-hmm" while the agent speaks cancel the agent?

Each turn: an utterance; once its answer has played `offsets[i % len(offsets)]` ms, the caller
says a short acknowledgement (`backchannels`, ids of the `backchannel_corpus`: "mm-hmm", "yeah",
"okay"), as a turn of its own that expects no answer. The caller behaves like a real client: a
`speech_started` while the answer plays stops playout and truncates it. The answered turn's
record carries `backchannel_offset_ms` and `backchannel_cancelled` (the server cancelled the
answer, or its playout was cut by the server's speech_started); summary.json
`probes.backchannel` has the share per offset and one finding per cancel. A server VAD that
needs more continuous speech than a backchannel holds must never cancel; one that does not, always.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.client.clips import utterance_clip
from harness.client.receiver import Incoming
from harness.protocol import AudioFormat, Dialect, Kind
from harness.scenarios.base import TurnWatch, corpus_of, follow_turn, think, turn_budget_s
from harness.scenarios.interruptions import _wait_playout_offset, truncate_played
from harness.scenarios.probe_audio import ladder_values

if TYPE_CHECKING:
    from harness.client.driver import Session
    from harness.scenarios import Setup

DEFAULTS: dict[str, Any] = {"offsets": "300/800", "backchannels": "mmhmm/yeah/okay",
                            "backchannel_corpus": "backchannel", "listen_ms": 1500, "think_ms": 0}


def prepare_backchannel(setup: Setup, utterances: list[Any]) -> None:
    spec, params = setup.spec, setup.params
    offsets = ladder_values(params["offsets"], "offsets")
    corpus = corpus_of(params["backchannel_corpus"])
    ids = [i for i in str(params["backchannels"]).split("/") if i]
    fmt, dialect = AudioFormat(spec.fmt), Dialect(spec.dialect)
    acks = [utterance_clip(corpus.get(i), fmt, spec.chunk_ms, dialect) for i in ids]
    setup.extra["acks"] = [acks[i % len(acks)] for i in range(len(setup.clips))]
    setup.extra["offsets"] = [offsets[i % len(offsets)] for i in range(len(setup.clips))]


def _listen(session: Session, setup: Setup, watch: TurnWatch) -> None:
    """The acknowledgement's own turn: it expects nothing; an answer to it is followed to its end."""
    for _ in session.events(float(setup.params["listen_ms"]) / 1000.0):
        pass
    if watch.response_id is not None and not watch.played_out:
        follow_turn(session, watch, setup.spec.turn_timeout_s)
    session.end_turn(watch.turn, "ok")


def run_backchannel(session: Session, setup: Setup) -> None:
    spec = setup.spec
    for clip, ack, offset_ms in zip(setup.clips, setup.extra["acks"], setup.extra["offsets"]):
        turn = session.speak(clip, "response")
        watch = TurnWatch(session, turn)
        budget_s = turn_budget_s(spec, clip.audio_ms)
        if not _wait_playout_offset(session, watch, offset_ms, budget_s):
            if follow_turn(session, watch, spec.turn_timeout_s) == "ok":   # over before the offset
                session.end_turn(turn, "ok")
            continue
        ack_watch = TurnWatch(session, session.speak(ack, "none"))

        def on_item(item: Incoming, turn: int = turn, watch: TurnWatch = watch) -> bool:
            ack_watch.see(item)
            rid = watch.response_id
            if rid is not None and item.kind is Kind.SPEECH_STARTED and not session.playout_over(rid):
                truncate_played(session, turn, rid, item.t_ns, "barge_in")
            return False

        if follow_turn(session, watch, spec.turn_timeout_s, on_item=on_item) == "ok":
            session.end_turn(turn, "ok", probe={"backchannel_offset_ms": offset_ms})
        _listen(session, setup, ack_watch)
        think(session, setup.params)
