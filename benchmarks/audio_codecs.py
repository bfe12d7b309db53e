"""Speed of the audio primitives the harness runs before (never during) a load test.

Measures, per 10 s of audio, the best of N runs: G.711 encode/decode against audioop (where it
exists), resampling for each conversion the harness makes, to_wire for each format. Writes
benchmarks/results/audio_codecs.json with the machine it ran on. Runs in a few seconds:
    python benchmarks/audio_codecs.py
"""

from __future__ import annotations

import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from harness.audio import alaw_encode, resample, to_wire, ulaw_decode, ulaw_encode
from harness.protocol.formats import AudioFormat

RESULTS = Path(__file__).resolve().parent / "results" / "audio_codecs.json"
REPEATS = 7


def best_ms(fn, *args) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1000)
    return round(min(times), 3)


def main() -> None:
    rng = np.random.default_rng(0)
    pcm8k = (rng.standard_normal(80000) * 3000).astype(np.int16)
    pcm24k = (rng.standard_normal(240000) * 3000).astype(np.int16)
    codes = ulaw_encode(pcm8k)
    figures: dict[str, float] = {
        "ulaw_encode_10s_8k_ms": best_ms(ulaw_encode, pcm8k),
        "alaw_encode_10s_8k_ms": best_ms(alaw_encode, pcm8k),
        "ulaw_decode_10s_8k_ms": best_ms(ulaw_decode, codes),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop

            figures["audioop_lin2ulaw_10s_8k_ms"] = best_ms(audioop.lin2ulaw, pcm8k.tobytes(), 2)
            figures["audioop_ulaw2lin_10s_8k_ms"] = best_ms(audioop.ulaw2lin, codes.tobytes(), 2)
        except ImportError:
            pass
    for from_hz, to_hz in [(24000, 8000), (24000, 16000), (8000, 24000), (16000, 24000), (44100, 24000)]:
        x = (rng.standard_normal(from_hz * 10) * 3000).astype(np.int16)
        figures[f"resample_10s_{from_hz}_to_{to_hz}_ms"] = best_ms(resample, x, from_hz, to_hz)
    for fmt in AudioFormat:
        figures[f"to_wire_10s_24k_{fmt.value}_ms"] = best_ms(to_wire, pcm24k, 24000, fmt)
    report = {
        "benchmark": "audio_codecs",
        "audio_seconds": 10,
        "repeats": REPEATS,
        "statistic": "best of repeats, ms",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": figures,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    for name, value in figures.items():
        print(f"{name:40s} {value:9.3f}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
