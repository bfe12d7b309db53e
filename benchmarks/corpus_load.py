"""Cost of getting a corpus ready for a run: load (validation), prepare per format, fingerprinting.

Writes benchmarks/results/corpus_load.json. Takes a few seconds per shipped corpus:
    python benchmarks/corpus_load.py [CORPUS ...]     (default: default tools telephony)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from harness.corpus import load_corpus
from harness.protocol.formats import AudioFormat

RESULTS = Path(__file__).resolve().parent / "results" / "corpus_load.json"


def timed_ms(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn(*args)
    return round((time.perf_counter() - start) * 1000, 2), value


def measure(name: str) -> dict[str, float]:
    load_ms, corpus = timed_ms(load_corpus, name)
    figures = {
        "utterances": len(corpus),
        "audio_s": round(sum(u.duration_ms for u in corpus.utterances) / 1000, 1),
        "load_ms": load_ms,
    }
    for fmt in AudioFormat:
        figures[f"prepare_{fmt.value}_ms"] = timed_ms(corpus.prepare, fmt)[0]
        figures[f"fingerprint_index_{fmt.value}_ms"], index = timed_ms(corpus.fingerprint_index, fmt)
        stream = b"".join(u.wire(fmt) for u in corpus.utterances[-3:])
        figures[f"identify_{fmt.value}_ms_per_{len(stream) / fmt.bytes_per_ms / 1000:.0f}s_buffer"] = timed_ms(
            index.identify, stream
        )[0]
    return figures


def main(names: list[str]) -> None:
    report = {
        "benchmark": "corpus_load",
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "corpora": {name: measure(name) for name in names},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["corpora"], indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["default", "tools", "telephony"])
