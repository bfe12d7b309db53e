"""`harness corpus check DIR`: validate a corpus fully and summarise it as a table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.corpus.loader import Corpus, load_corpus


@dataclass(frozen=True)
class Summary:
    """What `check` found: counts, durations and speech-boundary statistics (all in ms)."""

    corpus: Corpus
    total_ms: float
    durations_ms: np.ndarray
    lead_ms: np.ndarray  # file start -> speech start
    trail_ms: np.ndarray  # speech end -> file end
    speech_ms: np.ndarray  # speech end - speech start
    segment_counts: np.ndarray


def summarise(corpus: Corpus) -> Summary:
    """Statistics of a loaded corpus; reads every file to check it decodes."""
    bounds = [(u.duration_ms, u.segments_ms[0][0], u.segments_ms[-1][1]) for u in corpus.utterances if u.segments_ms]
    for utt in corpus.utterances:
        _ = utt.samples  # decode every file: a corrupt body fails here, not in a run
    return Summary(
        corpus=corpus,
        total_ms=float(sum(u.duration_ms for u in corpus.utterances)),
        durations_ms=np.array([u.duration_ms for u in corpus.utterances]),
        lead_ms=np.array([start for _, start, _ in bounds], dtype=float),
        trail_ms=np.array([duration - end for duration, _, end in bounds], dtype=float),
        speech_ms=np.array([end - start for _, start, end in bounds], dtype=float),
        segment_counts=np.array([len(u.segments_ms) for u in corpus.utterances if u.segments_ms], dtype=int),
    )


def _row(name: str, values: np.ndarray) -> str:
    if values.size == 0:
        return f"  {name:<26} {'-':>8} {'-':>8} {'-':>8} {'-':>8}"
    return f"  {name:<26} {values.min():8.0f} {np.median(values):8.0f} {np.mean(values):8.0f} {values.max():8.0f}"


def format_summary(summary: Summary) -> str:
    """The table `harness corpus check` prints."""
    corpus = summary.corpus
    rates = sorted({u.rate_hz for u in corpus.utterances})
    lines = [
        f"corpus {corpus.name} ({corpus.path}): OK",
        f"  kind {corpus.kind}, language {corpus.language or '?'}, rate {'/'.join(str(r) for r in rates)} Hz, "
        f"annotation: {corpus.annotation.get('method', 'unknown')}",
        f"  {len(corpus.utterances)} utterances, {summary.total_ms / 1000:.1f} s in total, "
        f"{int(summary.segment_counts.sum())} speech segments, "
        f"{sum(1 for u in corpus.utterances if u.transcript)} with transcripts",
        f"  {'ms':<26} {'min':>8} {'median':>8} {'mean':>8} {'max':>8}",
        _row("duration", summary.durations_ms),
    ]
    if corpus.kind == "speech":
        lines += [
            _row("speech start (lead)", summary.lead_ms),
            _row("speech end -> file end", summary.trail_ms),
            _row("speech start -> end", summary.speech_ms),
            _row("segments per utterance", summary.segment_counts.astype(float)),
        ]
    return "\n".join(lines)


def check_corpus(path: str) -> str:
    """Load, validate and summarise the corpus at `path`; CorpusError on the first problem."""
    return format_summary(summarise(load_corpus(path)))
