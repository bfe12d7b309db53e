"""Speech corpora with ground-truth speech boundaries: manifest, loading, annotation, building.

`load_corpus(path)` gives validated `Utterance`s whose audio converts once per wire format;
`harness corpus annotate|build|check` (in `command.py`) makes and checks corpora.
"""

from harness.corpus.fingerprint import FingerprintIndex, Match
from harness.corpus.loader import SHIPPED_CORPORA_DIR, Corpus, Utterance, load_corpus
from harness.corpus.manifest import CorpusError

__all__ = ["SHIPPED_CORPORA_DIR", "Corpus", "CorpusError", "FingerprintIndex", "Match", "Utterance", "load_corpus"]
