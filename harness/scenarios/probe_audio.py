"""Audio and parameters the probe scenarios prepare before their session connects.

`ladder_values("200/400/800")` reads a sweep parameter (also a list or one number).
`paused_utterance(a, b, pause_ms)` joins a speech segment of utterance a and one of b with
exactly `pause_ms` of digital silence (or a noise clip at a level) between them, labelled.
`speech_level_dbfs(u)` is an utterance's RMS level over its labelled speech (the reference of
an SNR). All of it runs when a session is prepared, never while audio streams.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.audio import segment_mask
from harness.client.spec import SpecError
from harness.corpus.loader import Utterance

EDGE_MS = 300.0   # digital silence before and after a paused utterance


def ladder_values(value: Any, name: str) -> list[float]:
    """A sweep: "200/400/800", [200, 400] or 300 -> floats; SpecError (one line) otherwise."""
    items = value if isinstance(value, (list, tuple)) else str(value).split("/")
    try:
        values = [float(v) for v in items if str(v).strip() != ""]
    except ValueError:
        raise SpecError(f"scenario param {name}={value!r}: write numbers separated by '/', e.g. 200/400/800") from None
    if not values or any(math.isnan(v) or math.isinf(v) for v in values):
        raise SpecError(f"scenario param {name}={value!r}: give at least one finite number, e.g. 200/400/800")
    return values


def _cut(u: Utterance, start_ms: float, end_ms: float) -> np.ndarray:
    rate = u.rate_hz
    return np.asarray(u.samples[int(round(start_ms * rate / 1000.0)):int(round(end_ms * rate / 1000.0))])


def paused_utterance(a: Utterance, b: Utterance, pause_ms: float, filler: np.ndarray | None = None) -> Utterance:
    """`EDGE_MS` of silence, a's last speech segment, `pause_ms` of silence (or `filler`, looped),
    b's first speech segment, `EDGE_MS` of silence: two segments, one true end of speech, and no
    other pause (a corpus segment holds no gap over the annotation's 250 ms merge distance);
    id `<a>+pause<N>ms+<b>`, `extra["pause_at_ms"]` where the pause starts."""
    if a.rate_hz != b.rate_hz:
        raise SpecError(f"pause_ladder: {a.id} and {b.id} have different rates; use one corpus rate")
    rate = a.rate_hz
    head, tail = _cut(a, *a.segments_ms[-1]), _cut(b, *b.segments_ms[0])
    n_pause, n_edge = int(round(pause_ms * rate / 1000.0)), int(round(EDGE_MS * rate / 1000.0))
    pause = np.zeros(n_pause, dtype=np.int16) if filler is None or filler.size == 0 else np.resize(filler, n_pause)
    edge = np.zeros(n_edge, dtype=np.int16)
    samples = np.concatenate([edge, head, pause.astype(np.int16), tail, edge]).astype(np.int16)
    samples.setflags(write=False)
    to_ms = 1000.0 / rate
    pause_at_ms = (n_edge + len(head)) * to_ms
    second_ms = (n_edge + len(head) + n_pause) * to_ms
    segments = [(n_edge * to_ms, pause_at_ms), (second_ms, second_ms + len(tail) * to_ms)]
    return Utterance(id=f"{a.id}+pause{pause_ms:g}ms+{b.id}", path=a.path, rate_hz=rate,
                     duration_ms=len(samples) * to_ms, transcript=f"{a.transcript} {b.transcript}",
                     segments_ms=segments, kind="speech", source=f"{a.id} + {pause_ms:g} ms pause + {b.id}",
                     license=a.license, extra={"pause_at_ms": pause_at_ms, "pause_ms": pause_ms}, _samples=samples)


def speech_level_dbfs(u: Utterance) -> float:
    """RMS level (dBFS) of the utterance's samples inside its labelled speech segments."""
    samples = np.asarray(u.samples, dtype=np.float64)
    mask = segment_mask(samples.size, [tuple(s) for s in u.segments_ms], u.rate_hz)
    power = float(np.mean(samples[mask] ** 2)) if mask.any() else 0.0
    return 10.0 * math.log10(power / 32768.0 ** 2) if power > 0 else -math.inf


def scaled_noise(noise: Utterance, rate_hz: int, level_dbfs: float) -> np.ndarray:
    """A noise clip's samples at `rate_hz`, scaled to `level_dbfs` RMS."""
    pcm = np.asarray(noise.pcm(rate_hz), dtype=np.float64)
    power = float(np.mean(pcm ** 2)) if pcm.size else 0.0
    gain = 10.0 ** (level_dbfs / 20.0) * 32768.0 / math.sqrt(power) if power > 0 else 0.0
    return np.clip(np.round(pcm * gain), -32768, 32767).astype(np.int16)
