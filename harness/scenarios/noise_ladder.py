"""`noise_ladder`: false barge-ins by noise level.

Like `noisy_playback`, but turn i's microphone noise while the answer plays is `ladder_noise`
(a noise-corpus clip) at `snrs[i % len(snrs)]` dB below the turn's own speech level (the RMS of
its utterance over the labelled speech). A `speech_started` during playback is a false barge-in
(the caller sends no speech); the caller reacts like a real client: stops playout and truncates.
The record carries `snr_db`; summary.json `probes.noise_ladder` the false barge-in rate per SNR.
A VAD whose threshold is T dBFS triggers once the noise reaches T: at SNRs below the speech
level minus T, not above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.client.clips import noise_clip
from harness.client.receiver import Incoming
from harness.protocol import AudioFormat, Dialect, Kind
from harness.scenarios.base import TurnWatch, corpus_of, follow_turn, think, turn_budget_s
from harness.scenarios.interruptions import truncate_played
from harness.scenarios.probe_audio import ladder_values, speech_level_dbfs

if TYPE_CHECKING:
    from harness.client.driver import Session
    from harness.scenarios import Setup

DEFAULTS: dict[str, Any] = {"snrs": "30/20/10/0", "ladder_noise": "pink", "think_ms": 0}


def prepare_noise_ladder(setup: Setup, utterances: list[Any]) -> None:
    spec, params = setup.spec, setup.params
    snrs = ladder_values(params["snrs"], "snrs")
    fmt, dialect = AudioFormat(spec.fmt), Dialect(spec.dialect)
    noise = corpus_of(spec.noise_corpus).get(str(params["ladder_noise"]))
    noises, probes = [], []
    for i, utt in enumerate(utterances):
        snr = snrs[i % len(snrs)]
        noises.append(noise_clip(noise, fmt, spec.chunk_ms, dialect, speech_level_dbfs(utt) - snr))
        probes.append({"snr_db": snr})
    setup.extra["noises"], setup.extra["probes"] = noises, probes


def run_noise_ladder(session: Session, setup: Setup) -> None:
    for clip, noise, probe in zip(setup.clips, setup.extra["noises"], setup.extra["probes"]):
        turn = session.speak(clip, "response")
        watch = TurnWatch(session, turn)

        def on_item(item: Incoming, turn: int = turn, watch: TurnWatch = watch, noise: Any = noise) -> bool:
            rid = watch.response_id
            player = session.player(rid)
            if rid is None or player is None or not player.started:
                return False
            playing = not session.playout_over(rid)
            session.set_background(noise if playing else None)
            if playing and item.kind is Kind.SPEECH_STARTED:
                truncate_played(session, turn, rid, item.t_ns, "barge_in")
                session.set_background(None)
            return False

        try:
            status = follow_turn(session, watch, turn_budget_s(setup.spec, clip.audio_ms), on_item=on_item)
        finally:
            session.set_background(None)
        if status == "ok":
            session.end_turn(turn, "ok", probe=probe)
        think(session, setup.params)
