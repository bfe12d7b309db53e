"""The one turn matcher: which user item and which response belong to each turn, decided as records arrive.

Fed every trace record in order (`TurnMatcher.add`), it follows each turn from its `turn_start`
mark. Its user item is found by id: in server-VAD mode the first `speech_started` received while
the turn was the newest one (its `item_id` U, then the `speech_stopped` and `committed` for U);
in manual mode the first `committed` after the turn's `commit_sent`. The response that answers it
is the first response created at or after its anchor that no turn claimed yet, where the anchor is

- manual turns: the turn's first `response_create_sent`;
- server-VAD turns: the later of that commit and the caller's speech end (a response created
  while the caller was still speaking answers a fragment: the VAD ended the turn at a pause).

When the answer only calls a tool, the follow-up is the first unclaimed response created after
the turn's `response_create_sent` that follows its `function_output_sent`.

The caller's scenarios ask this matcher which response they are waiting for, and the metrics
credit the same one: live and offline they are fed the same records in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.metrics.session_index import SessionIndex
from harness.protocol.responses import ResponseFacts
from harness.trace.vocabulary import Mark, Rec


def _item_of(record: dict[str, Any] | None) -> Any:
    return None if record is None else (record.get("event") or {}).get("item_id")


@dataclass
class TurnState:
    """What the matcher knows of one turn so far."""

    turn: Any
    start: dict[str, Any]
    next_start_ns: int | None = None
    speech_end: dict[str, Any] | None = None
    started: dict[str, Any] | None = None      # speech_started of the turn's user item
    stopped: dict[str, Any] | None = None
    committed: dict[str, Any] | None = None
    commit_sent: dict[str, Any] | None = None
    create_sent: dict[str, Any] | None = None
    output_sent: dict[str, Any] | None = None
    follow_create: dict[str, Any] | None = None
    answer: str | None = None
    follow: str | None = None
    ended: bool = False

    @property
    def start_ns(self) -> int:
        return int(self.start["t_ns"])

    @property
    def manual(self) -> bool:
        return self.commit_sent is not None

    def anchor_ns(self) -> int | None:
        """From when a response can answer this turn; None while that is not known yet."""
        if self.manual:
            return self.create_sent["t_ns"] if self.create_sent is not None else None
        if self.committed is None:
            return None
        if self.speech_end is None:
            # an utterance with a speech end waits for it (its mark comes with the chunk holding it)
            return None if self.start.get("speech_end_ms") is not None else int(self.committed["t_ns"])
        return max(int(self.committed["t_ns"]), int(self.speech_end["t_ns"]))


class TurnMatcher:
    def __init__(self, index: SessionIndex) -> None:
        self.index = index
        self.turns: dict[Any, TurnState] = {}
        self.order: list[TurnState] = []
        self.claimed: set[str] = set()

    def answer(self, turn: Any) -> ResponseFacts | None:
        state = self.turns.get(turn)
        return self.index.log.get(state.answer) if state is not None else None

    def follow(self, turn: Any) -> ResponseFacts | None:
        state = self.turns.get(turn)
        return self.index.log.get(state.follow) if state is not None else None

    # -- feeding ------------------------------------------------------------------------------
    def add(self, record: dict[str, Any]) -> None:
        kind = record.get("rec")
        if kind == Rec.MARK:
            self._mark(record)
        elif kind == Rec.RECV:
            self._recv(record)

    def _mark(self, record: dict[str, Any]) -> None:
        name = record.get("mark")
        if name == Mark.TURN_START:
            if self.order:
                self.order[-1].next_start_ns = record["t_ns"]
            new = TurnState(record.get("turn"), record)
            self.turns[new.turn] = new
            self.order.append(new)
            return
        found = self.turns.get(record.get("turn"))
        if found is None:
            return
        state = found
        if name == Mark.SPEECH_END_SENT and state.speech_end is None:
            state.speech_end = record
            self._claim_for(state)
        elif name == Mark.COMMIT_SENT and state.commit_sent is None:
            state.commit_sent = record
        elif name == Mark.RESPONSE_CREATE_SENT:
            if state.output_sent is not None and state.follow_create is None \
                    and record["t_ns"] >= state.output_sent["t_ns"]:
                state.follow_create = record      # a tool's follow-up
                self._claim_follow(state)
            elif state.create_sent is None:
                state.create_sent = record        # the anchor of a manual turn
                self._claim_for(state)
        elif name == Mark.FUNCTION_OUTPUT_SENT and state.output_sent is None:
            state.output_sent = record
        elif name == Mark.TURN_END:
            state.ended = True

    def _recv(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        t_ns = record["t_ns"]
        if kind == "speech_started":
            for state in reversed(self.order):
                if state.start_ns <= t_ns and (state.next_start_ns is None or t_ns < state.next_start_ns):
                    if state.started is None and not state.manual:
                        state.started = record
                    break
        elif kind == "speech_stopped":
            item = _item_of(record)
            for state in self.order:
                if state.started is not None and state.stopped is None and _item_of(state.started) == item \
                        and t_ns >= state.started["t_ns"]:
                    state.stopped = record
                    break
        elif kind == "committed":
            item = _item_of(record)
            for state in self.order:
                if state.committed is not None:
                    continue
                if state.manual:
                    if t_ns >= state.commit_sent["t_ns"]:    # type: ignore[index]
                        state.committed = record
                        self._claim_for(state)
                        break
                elif state.started is not None and _item_of(state.started) == item and t_ns >= state.started["t_ns"]:
                    state.committed = record
                    self._claim_for(state)
                    break
        elif kind == "response_created":
            rid = ((record.get("event") or {}).get("response") or {}).get("id")
            if not isinstance(rid, str) or rid in self.claimed:
                return
            created = self.index.log.get(rid)
            created_ns = created.created_ns if created is not None and created.created_ns is not None else t_ns
            for state in self.order:
                if state.answer is None:
                    anchor = state.anchor_ns()
                    if anchor is not None and created_ns >= anchor:
                        state.answer = rid
                        self.claimed.add(rid)
                        return
                elif state.follow is None and state.follow_create is not None \
                        and created_ns >= state.follow_create["t_ns"]:
                    state.follow = rid
                    self.claimed.add(rid)
                    return

    # -- claiming responses that were created before the anchor became known -------------
    def _first_unclaimed(self, after_ns: int) -> str | None:
        log = self.index.log
        for rid in log.order:
            facts = log.responses[rid]
            if rid not in self.claimed and facts.created_ns is not None and facts.created_ns >= after_ns:
                return rid
        return None

    def _claim_for(self, state: TurnState) -> None:
        anchor = state.anchor_ns()
        if state.answer is not None or anchor is None:
            return
        rid = self._first_unclaimed(anchor)
        if rid is not None:
            state.answer = rid
            self.claimed.add(rid)

    def _claim_follow(self, state: TurnState) -> None:
        if state.follow is not None or state.follow_create is None or state.answer is None:
            return
        rid = self._first_unclaimed(int(state.follow_create["t_ns"]))
        if rid is not None:
            state.follow = rid
            self.claimed.add(rid)
