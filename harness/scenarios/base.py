"""What every scenario shares: corpora, utterance choice, session config, and following a turn.

A turn is followed through the session's inbox by `TurnWatch`: the response that answers it (as
the session's turn matcher decides: the one the metrics credit), that response's
`response.done`, and the end of its playout. `follow_turn` runs
that loop with the turn timeout and records `timeout` + `turn_end` when the answer does not come:
a turn is never dropped.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from harness.client.driver import Session
from harness.client.receiver import Incoming
from harness.client.spec import SessionSpec, SpecError
from harness.corpus import Corpus, load_corpus
from harness.protocol import AudioFormat, Kind, SessionConfig, TurnDetection, default_session_config
from harness.protocol.responses import ResponseFacts

FALLBACK_CHECK_S = 0.25          # how often a waiting turn checks whether the target's VAD is silent
VAD_FALLBACK_MARGIN_MS = 1500.0  # past the silence window: long for any server VAD's decision delay
SEMANTIC_SILENCE_MS = 1200.0     # semantic VAD has no silence window: its slowest eagerness
VAD_PARAMS = ("vad_threshold", "prefix_padding_ms", "silence_duration_ms", "interrupt_response", "create_response")

_corpora: dict[str, Corpus] = {}
_corpora_lock = threading.Lock()


def corpus_of(source: Any) -> Corpus:
    """A loaded corpus for a Corpus or a directory (loaded once per process)."""
    if isinstance(source, Corpus):
        return source
    key = str(Path(source).resolve()) if Path(str(source)).exists() else str(source)
    with _corpora_lock:
        if key not in _corpora:
            _corpora[key] = load_corpus(source)
        return _corpora[key]


def pick_utterances(corpus: Corpus, count: int, session_id: str, ids: list[str] | None = None) -> list[Any]:
    """`count` utterances: the listed ids in order (cycled), else the corpus's speech cycled from a
    session-dependent start, so concurrent sessions do not all say the same thing at once."""
    if ids:
        chosen = [corpus.get(i) for i in ids]
    else:
        chosen = [u for u in corpus.utterances if u.kind == "speech" and u.speech_end_ms is not None]
    if not chosen:
        raise SpecError(f"corpus {corpus.name!r} has no speech utterances; use a speech corpus (corpora/default)")
    start = 0 if ids else zlib.crc32(session_id.encode()) % len(chosen)
    return [chosen[(start + i) % len(chosen)] for i in range(count)]


def session_config(spec: SessionSpec, *, server_vad: bool = True, tools: list[dict[str, Any]] | None = None,
                   params: dict[str, Any] | None = None) -> SessionConfig:
    """The spec's own config, else the dialect's defaults in the spec's format, with server VAD
    (its settings overridable by params) or none (manual turns), and the scenario's tools."""
    if spec.session_config is not None:
        return spec.session_config
    params = params or {}
    fmt = AudioFormat(spec.fmt)
    config = replace(default_session_config(spec.dialect), input_format=fmt, output_format=fmt)
    if not server_vad:
        config.turn_detection = None
    else:
        detection = config.turn_detection or TurnDetection()
        overrides = {name: params[name] for name in VAD_PARAMS if name in params}
        if "vad_threshold" in overrides:
            overrides["threshold"] = overrides.pop("vad_threshold")
        config.turn_detection = replace(detection, **overrides)
    if tools:
        config.tools = list(tools)
        config.tool_choice = params.get("tool_choice", "auto")
    return config


@dataclass
class TurnWatch:
    """Follows one turn: the response that answers it (or, `follow_up`, the tool follow-up), as the
    session's turn matcher (`harness.metrics.matcher`) decides it, and the end of its playout.

    The scenario waits for exactly the response the metrics credit: both ask the same matcher,
    fed the same records. `see` notes the local happenings of the turn (its utterance sent).
    """

    session: Session
    turn: int
    follow_up: bool = False
    sent_ns: int | None = None
    started_ns: int | None = None      # when the turn's wait began (its utterance was queued)
    deadline_ns: int | None = None     # the end of the turn's one budget, when the scenario set it
    fell_back: bool = False            # the caller committed for a target without server VAD

    def see(self, item: Incoming) -> None:
        if item.local == "utterance_sent" and item.turn == self.turn:
            self.sent_ns = item.t_ns

    @property
    def answer(self) -> ResponseFacts | None:
        meter = self.session.meter
        return meter.follow(self.turn) if self.follow_up else meter.answer(self.turn)

    @property
    def response_id(self) -> str | None:
        facts = self.answer
        return facts.id if facts is not None else None

    @property
    def done(self) -> bool:
        facts = self.answer
        return facts is not None and facts.done

    @property
    def played_out(self) -> bool:
        """The answer's playout is over (ended, stopped) or there is nothing to play."""
        facts = self.answer
        if facts is None or not facts.done:
            return False
        player = self.session.player(facts.id)
        return player is None or not player.started or self.session.playout_over(facts.id)

    def stage(self) -> str:
        if self.response_id is None:
            return "response"
        return "response_done" if not self.done else "playout"


def follow_turn(session: Session, watch: TurnWatch, budget_s: float, *, wait_playout: bool = True,
                on_item: Callable[[Incoming], bool] | None = None) -> str:
    """Run the inbox until the turn is answered (and played out); "ok" or "timeout" (recorded).

    `on_item` sees every item first; returning True ends the turn early as "ok" (the scenario
    decided, e.g. it barged in). The turn waits at most `budget_s`, and at most what is left of
    the turn's own budget (`watch.deadline_ns`), so a turn never waits two timeouts.
    """
    finished = (lambda: watch.played_out) if wait_playout else (lambda: watch.done)
    if finished():     # it may have finished while the scenario was following another turn
        return "ok"
    start_ns = session.now_ns()
    deadline_ns = start_ns + int(budget_s * 1e9)
    if watch.deadline_ns is not None:
        deadline_ns = min(deadline_ns, watch.deadline_ns)
    while True:
        remaining_s = (deadline_ns - session.now_ns()) / 1e9
        if remaining_s <= 0:
            break
        for item in session.events(min(remaining_s, FALLBACK_CHECK_S)):
            watch.see(item)
            if on_item is not None and on_item(item):
                return "ok"
            if finished():
                return "ok"
        if finished():
            return "ok"
        vad_fallback(session, watch)
    if finished():
        return "ok"
    waited_s = (session.now_ns() - (watch.started_ns or start_ns)) / 1e9
    session.timeout_turn(watch.turn, waited_s, watch.stage())
    return "timeout"


def vad_fallback(session: Session, watch: TurnWatch) -> None:
    """A target without server VAD never commits: after the silence window plus a margin past the
    speech end, record that (`no_server_vad_commit`) and commit and ask for the response, so the
    turn's answer, cancel, barge-in and tools are still measured (`vad_fallback="none"`: wait)."""
    if watch.fell_back or session.spec.vad_fallback != "manual" or session.config is None:
        return
    detection = session.config.turn_detection
    state = session.meter.matcher.turns.get(watch.turn)
    if detection is None or state is None or state.manual or state.committed is not None or state.speech_end is None:
        return
    silence_ms = float(detection.silence_duration_ms or SEMANTIC_SILENCE_MS)
    waited_ms = (session.now_ns() - int(state.speech_end["t_ns"])) / 1e6
    if waited_ms < silence_ms + VAD_FALLBACK_MARGIN_MS:
        return
    watch.fell_back = True
    session.rec.violation(session.now_ns(), "no_server_vad_commit", "remote",
                          f"no input_audio_buffer.committed {waited_ms:.0f} ms after the speech end (silence window "
                          f"{silence_ms:.0f} ms): the caller commits and asks for the response itself", None)
    session.send(Kind.INPUT_AUDIO_COMMIT, mark="commit_sent", mark_fields={"turn": watch.turn, "fallback": True})
    session.send(Kind.RESPONSE_CREATE, mark="response_create_sent", mark_fields={"turn": watch.turn})


def turn_budget_s(spec: SessionSpec, clip_ms: float) -> float:
    """Time for a turn: sending its utterance (at the spec's rtf) plus the turn timeout."""
    return clip_ms / 1000.0 / spec.rtf + spec.turn_timeout_s


def think(session: Session, params: dict[str, Any]) -> None:
    """The caller's pause between turns (`think_ms`); silence keeps streaming meanwhile."""
    pause_ms = float(params.get("think_ms", 0))
    if pause_ms > 0:
        session.pause(pause_ms / 1000.0)
