"""`pause_ladder`: does an n-ms pause inside an utterance end the turn?

Turn i speaks the last speech segment of utterance i, then a pause of `pauses[i % len(pauses)]` ms (digital
silence, or `pause_noise`, a clip of the noise corpus, at `pause_noise_dbfs` RMS), then the first
segment of the next utterance: one turn, one true end of speech (the second part's). Its record carries
`pause_ms` and `pause_split`: whether the server's VAD ended the turn inside the pause. A VAD
with a silence window of S ms must not split on pauses well under S and must split on those
well over it. summary.json `probes.pause_ladder` has the share per pause length; the report a curve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.client.clips import utterance_clip
from harness.protocol import AudioFormat, Dialect
from harness.scenarios.base import TurnWatch, corpus_of, follow_turn, think, turn_budget_s
from harness.scenarios.probe_audio import ladder_values, paused_utterance, scaled_noise

if TYPE_CHECKING:
    from harness.client.driver import Session
    from harness.scenarios import Setup

DEFAULTS: dict[str, Any] = {"pauses": "200/400/800/1200", "pause_noise": None, "pause_noise_dbfs": -50.0,
                            "think_ms": 0}


def prepare_pause_ladder(setup: Setup, utterances: list[Any]) -> None:
    spec, params = setup.spec, setup.params
    pauses = ladder_values(params["pauses"], "pauses")
    fmt, dialect = AudioFormat(spec.fmt), Dialect(spec.dialect)
    filler = None
    if params.get("pause_noise"):
        noise = corpus_of(spec.noise_corpus).get(str(params["pause_noise"]))
        filler = scaled_noise(noise, utterances[0].rate_hz, float(params["pause_noise_dbfs"]))
    clips, probes = [], []
    for i, first in enumerate(utterances):
        second = utterances[(i + 1) % len(utterances)]
        pause_ms = pauses[i % len(pauses)]
        joined = paused_utterance(first, second, pause_ms, filler)
        clips.append(utterance_clip(joined, fmt, spec.chunk_ms, dialect))
        probes.append({"pause_ms": pause_ms, "pause_at_ms": joined.extra["pause_at_ms"]})
    setup.clips, setup.extra["probes"] = clips, probes


def run_pause_ladder(session: Session, setup: Setup) -> None:
    for clip, probe in zip(setup.clips, setup.extra["probes"]):
        turn = session.speak(clip, "response")
        watch = TurnWatch(session, turn)
        if follow_turn(session, watch, turn_budget_s(setup.spec, clip.audio_ms)) == "ok":
            session.end_turn(turn, "ok", probe=probe)
        think(session, setup.params)
