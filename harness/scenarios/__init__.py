"""What a simulated caller does, by name, and the one entry point that runs a caller.

    from harness.client import SessionSpec
    from harness.scenarios import run_scenario, run_sessions, SCENARIOS

    result = run_scenario(spec, stop=None, on_turn_end=None)   # -> SessionResult

`run_scenario(spec: SessionSpec, stop: threading.Event | None = None,
on_turn_end: Callable[[dict], None] | None = None) -> SessionResult` is the stable entry used by
the Locust users (harness.load) and by `harness replay`. It blocks for the session's life on the
calling thread (a greenlet under Locust), writes one trace (`spec.trace_path()`), and always
returns: a target that refuses, fails the handshake or closes early gives a result with reason
"error"/"closed" and the story in the trace, never an exception. Setting `stop` ends the session
within ~0.25 s with reason "stopped". `on_turn_end(record)` is called with each turn's record the
moment the turn ends (turns the run stopped: when the session closes); `SessionResult.records`
holds them all, measured as the session ran, and `SessionResult.lateness` the session's send
lateness (10 us buckets): nothing needs to read the trace back.
Only bad input (unknown scenario, bad params, missing corpus) raises, as a `user_error`
exception, before anything connects. KeyboardInterrupt, SystemExit and gevent's GreenletExit
(Locust stopping a user) close the trace with reason "stopped", then propagate.

`preencode(spec)` encodes every clip sessions like `spec` may send, ahead of a run (Locust:
call it in `test_start`, after the fork, once per format/dialect/scenario in use), so no session
pays for encoding while others stream.

`run_sessions(specs, stop=None)` runs many specs concurrently, one thread each, and returns their
results in order (tests, `harness replay --repeat`).

`SCENARIOS` maps each name to its `Scenario` (the flow, its default params, the session
config it needs). Scenario params (`SessionSpec.scenario_params`), all optional:

| scenario | params (default) |
|---|---|
| plain | utterances (ids; default: the corpus cycled), wait_playout (true), think_ms (0) |
| manual | same as plain; turn detection is off, the caller commits and asks for the response |
| barge_in | barge_offset_ms (500) into the answer's playout; at least 2 turns; mute_during_answer (false; Live only: every other attempt muted, 4 turns per muted + unmuted pair) |
| client_cancel | cancel_after_ms (400) of received answer audio, think_ms (0) |
| function_call | tool_delay_ms (100), tools_corpus ("tools"), utterances (tool requests), tool_choice ("auto") |
| noisy_playback | noise ("babble"), noise_dbfs (-30), react (true), think_ms (0) |
| silence | duration_ms (3000) per turn, listen_ms (1000), noise (none: digital silence), noise_dbfs (-45) |
| pause_ladder | pauses ("200/400/800/1200" ms between two utterances' speech), pause_noise (none: digital silence), pause_noise_dbfs (-50), think_ms (0) |
| backchannel | offsets ("300/800" ms into the answer's playout), backchannels ("mmhmm/yeah/okay"), backchannel_corpus ("backchannel"), listen_ms (1500), think_ms (0) |
| noise_ladder | snrs ("30/20/10/0" dB under the turn's speech level), ladder_noise ("pink"), think_ms (0) |
| endpointing | think_ms (0); each utterance twice: server VAD, then turn detection off and a commit at the true speech end (2 turns per utterance) |

Common params: vad_threshold, prefix_padding_ms, silence_duration_ms, interrupt_response,
create_response (server VAD settings; otherwise the dialect's defaults from
`harness.protocol.default_session_config`), used when the spec gives no session_config.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

from harness.client.clips import noise_clip, silence_turn_clip, utterance_clip
from harness.client.driver import Session
from harness.client.pacer import Clip
from harness.client.spec import SessionResult, SessionSpec, SpecError
from harness.protocol import AudioFormat, Dialect
from harness.scenarios.base import VAD_PARAMS, corpus_of, pick_utterances, session_config
from harness.scenarios.conversation import run_manual, run_plain, run_silence
from harness.scenarios import backchannel, noise_ladder, pause_ladder
from harness.scenarios.endpointing import run_endpointing
from harness.scenarios.interruptions import run_barge_in, run_client_cancel, run_live_barge_in, run_noisy_playback
from harness.scenarios.tools import TOOLS, run_function_call

T = TypeVar("T")


@dataclass
class Setup:
    """Everything a scenario flow needs, prepared (and encoded) before the session connects."""

    spec: SessionSpec
    params: dict[str, Any]
    clips: list[Clip]
    noise: Clip | None = None
    extra: dict[str, Any] = field(default_factory=dict)   # what a probe scenario prepared per turn


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Session, Setup], None]
    defaults: dict[str, Any]
    server_vad: bool = True
    tools: bool = False
    speech: bool = True        # turns speak corpus utterances (else silence/noise turns)
    min_turns: int = 1
    corpus_param: str | None = None   # a param naming the corpus instead of spec.corpus
    # a probe's own clips, built from the turns' utterances before the session connects
    prepare_clips: Callable[[Setup, list[Any]], None] | None = None
    live_run: Callable[[Session, Setup], None] | None = None   # the flow in Live, when it differs

    def flow(self, dialect: str) -> Callable[[Session, Setup], None]:
        """The flow this scenario runs in `dialect`."""
        return self.live_run if dialect == Dialect.LIVE.value and self.live_run is not None else self.run


SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (
        Scenario("plain", run_plain, {"wait_playout": True, "think_ms": 0}),
        Scenario("manual", run_manual, {"wait_playout": True, "think_ms": 0}, server_vad=False),
        Scenario("barge_in", run_barge_in, {"barge_offset_ms": 500, "mute_during_answer": False}, min_turns=2, live_run=run_live_barge_in),
        Scenario("client_cancel", run_client_cancel, {"cancel_after_ms": 400, "think_ms": 0}),
        Scenario("function_call", run_function_call,
                 {"tool_delay_ms": 100, "tools_corpus": "tools", "think_ms": 0,
                  "utterances": ["weather_paris", "order_status", "weather_tokyo_tomorrow"]},
                 tools=True, corpus_param="tools_corpus"),
        Scenario("noisy_playback", run_noisy_playback,
                 {"noise": "babble", "noise_dbfs": -30.0, "react": True, "think_ms": 0}),
        Scenario("silence", run_silence,
                 {"duration_ms": 3000, "listen_ms": 1000, "noise": None, "noise_dbfs": -45.0}, speech=False),
        Scenario("endpointing", run_endpointing, {"think_ms": 0}),
        Scenario("pause_ladder", pause_ladder.run_pause_ladder, pause_ladder.DEFAULTS,
                 prepare_clips=pause_ladder.prepare_pause_ladder),
        Scenario("backchannel", backchannel.run_backchannel, backchannel.DEFAULTS,
                 prepare_clips=backchannel.prepare_backchannel),
        Scenario("noise_ladder", noise_ladder.run_noise_ladder, noise_ladder.DEFAULTS,
                 prepare_clips=noise_ladder.prepare_noise_ladder),
    )
}


# Why each scenario does not run in the live dialect (the rest do: plain, barge_in, noisy_playback,
# silence). One line each, said before anything starts.
LIVE_UNAVAILABLE: dict[str, str] = {
    "manual": "Live has no input commit or turn detection to turn off (the service decides when to answer)",
    "client_cancel": "Live has no response.cancel",
    "function_call": "Live's tools belong to a delegation backend, not the voice session",
    "endpointing": "it compares server VAD with a manual commit, and Live has neither",
    "pause_ladder": "it reads the server VAD's commits, which Live does not send",
    "backchannel": "it reads speech_started and response.cancel, which Live does not send",
    "noise_ladder": "it reads the server VAD's commits, which Live does not send",
}


def check_dialect(name: str, dialect: str) -> None:
    """SpecError (one line) for a scenario the dialect cannot run: checked before a run starts."""
    if dialect == Dialect.LIVE.value and name in LIVE_UNAVAILABLE:
        raise SpecError(f"scenario {name} is not available in the live dialect because {LIVE_UNAVAILABLE[name]}; "
                        f"use plain, barge_in, noisy_playback or silence (or --dialect ga/beta)")


def scenario_named(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SpecError(f"unknown scenario {name!r}; use one of {', '.join(SCENARIOS)}") from None


def check_params(name: str, params: dict[str, Any]) -> None:
    """SpecError (one line) for a param the scenario does not have: checked before a run starts."""
    scenario = scenario_named(name)
    unknown = set(params) - set(scenario.defaults) - {"utterances", "tool_choice", *VAD_PARAMS}
    if unknown:
        raise SpecError(f"scenario {scenario.name!r} has no param(s) {', '.join(sorted(unknown))}; "
                        f"its params are {', '.join(sorted(scenario.defaults)) or 'none'} "
                        f"(and {', '.join(VAD_PARAMS)})")


def prepare(spec: SessionSpec) -> tuple[Scenario, Setup, str]:
    """Check the spec, load corpora and encode every clip the session will send (no network)."""
    spec.check()
    scenario = scenario_named(spec.scenario)
    check_params(scenario.name, spec.scenario_params)
    check_dialect(scenario.name, spec.dialect)
    params = {**scenario.defaults, **spec.scenario_params}
    if params.get("mute_during_answer") and spec.dialect != Dialect.LIVE.value:
        raise SpecError("barge_in's mute_during_answer needs --dialect live (Realtime has no input mute); "
                        "drop it or use --dialect live")
    turns = max(spec.turns, scenario.min_turns)
    fmt, dialect = AudioFormat(spec.fmt), Dialect(spec.dialect)
    noise = None
    if params.get("noise"):
        noise_utt = corpus_of(spec.noise_corpus).get(str(params["noise"]))
        noise = noise_clip(noise_utt, fmt, spec.chunk_ms, dialect, float(params["noise_dbfs"]))
    utterances: list[Any] = []
    if scenario.speech:
        source = params[scenario.corpus_param] if scenario.corpus_param else spec.corpus
        corpus = corpus_of(source)
        ids = params.get("utterances")
        utterances = pick_utterances(corpus, turns, spec.session_id, list(ids) if ids else None)
        clips = [utterance_clip(u, fmt, spec.chunk_ms, dialect) for u in utterances]
        corpus_name = corpus.name
    else:
        filler = noise or silence_turn_clip(fmt, spec.chunk_ms, dialect, float(params["duration_ms"]))
        if noise is not None:   # a noise turn lasts duration_ms: cut or loop the clip's chunks
            n_chunks = max(1, int(float(params["duration_ms"]) // spec.chunk_ms))
            filler = _looped(noise, n_chunks)
        clips = [filler] * turns
        corpus_name = "noise" if noise is not None else "silence"
    setup = Setup(spec=spec, params=params, clips=clips, noise=noise)
    if scenario.prepare_clips is not None:
        scenario.prepare_clips(setup, utterances)
    return scenario, setup, corpus_name


def preencode(spec: SessionSpec) -> int:
    """Encode every clip sessions like `spec` can send (all utterances of its corpus, its noise),
    once per process, before a run starts (Locust: in `test_start`, after the fork). Returns the
    number of utterances prepared; later sessions only look clips up."""
    scenario = scenario_named(spec.scenario)
    params = {**scenario.defaults, **spec.scenario_params}
    fmt, dialect = AudioFormat(spec.fmt), Dialect(spec.dialect)
    count = 0
    if scenario.speech:
        corpus = corpus_of(params[scenario.corpus_param] if scenario.corpus_param else spec.corpus)
        for utt in corpus.utterances:
            if utt.kind == "speech":
                utterance_clip(utt, fmt, spec.chunk_ms, dialect)
                count += 1
    if params.get("noise"):
        noise_utt = corpus_of(spec.noise_corpus).get(str(params["noise"]))
        noise_clip(noise_utt, fmt, spec.chunk_ms, dialect, float(params["noise_dbfs"]))
    return count


def _looped(clip: Clip, n_chunks: int) -> Clip:
    index = [i % len(clip) for i in range(n_chunks)]
    return Clip(name=clip.name, messages=tuple(clip.messages[i] for i in index),
                sha1=tuple(clip.sha1[i] for i in index), speech=tuple(clip.speech[i] for i in index),
                chunk_bytes=clip.chunk_bytes, chunk_ms=clip.chunk_ms, utterance=clip.utterance)


def run_scenario(spec: SessionSpec, stop: threading.Event | None = None,
                 on_turn_end: Callable[[dict[str, Any]], None] | None = None, **session_options: Any) -> SessionResult:
    """Run one simulated caller to the end (see the module docstring for the guarantees).

    `session_options` go to the `Session` (a test's virtual clock, in-memory connector and pacer),
    except `on_session`, called with the session as soon as it exists."""
    on_session = session_options.pop("on_session", None)
    scenario, setup, corpus_name = prepare(spec)
    session = Session(spec, stop, on_turn_end, corpus_name=corpus_name, **session_options)
    if on_session is not None:
        on_session(session)     # the caller keeps it: a killed caller still has its measurements
    try:
        with session:
            config = session_config(spec, server_vad=scenario.server_vad,
                                    tools=TOOLS if scenario.tools else None, params=setup.params)
            if session.open(config):
                scenario.flow(spec.dialect)(session, setup)
    except Exception:       # recorded in the trace by Session.__exit__ (mark "error", footer "error")
        pass
    return session_result(session)


def session_result(session: Session) -> SessionResult:
    """What a session measured, from its own meter (also for a session its caller was killed in:
    its trace was closed with reason "stopped", which recorded its open turns)."""
    return SessionResult(trace_path=session.trace_path, reason=session.reason or "error",
                         turns=session.turns_started, turns_ok=session.turns_ok, error=session.error,
                         records=session.meter.records, lateness=session.meter.index.lateness_summary(),
                         connect_failed=session.meter.index.first_mark("connect_failed", None) is not None,
                         conformance=session.meter.index.violations_by_rule,
                         measure_error=session.rec.observer_error)


def run_each(specs: Sequence[SessionSpec], runner: Callable[[SessionSpec], T]) -> list[T | None]:
    """`runner(spec)` for every spec at once, one thread each (greenlets under gevent); results in
    spec order, None where the runner raised."""
    results: list[T | None] = [None] * len(specs)

    def one(index: int, spec: SessionSpec) -> None:
        results[index] = runner(spec)

    threads = [threading.Thread(target=one, args=(i, s), name=f"caller-{s.session_id}", daemon=True)
               for i, s in enumerate(specs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def run_sessions(specs: Sequence[SessionSpec], stop: threading.Event | None = None,
                 on_turn_end: Callable[[dict[str, Any]], None] | None = None) -> list[SessionResult]:
    """Run every spec's scenario at once; results in spec order."""
    return [r for r in run_each(specs, lambda spec: run_scenario(spec, stop, on_turn_end)) if r is not None]


__all__ = ["LIVE_UNAVAILABLE", "SCENARIOS", "Scenario", "Setup", "check_dialect", "check_params", "preencode", "prepare", "run_each", "run_scenario", "run_sessions", "scenario_named", "session_result"]
