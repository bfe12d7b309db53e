"""The one build step pyproject.toml cannot declare: the shipped corpora go into the wheel.

`corpora/` sits beside the package (the README, tests and `harness corpus` use it there), so it
is no package and package-data cannot name it; this copies it into the built package as
`harness/corpus/shipped/corpora/`, where `harness.corpus.SHIPPED_CORPORA_DIR` finds it in an
installed harness. Everything else is configured in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CORPORA = Path(__file__).resolve().parent / "corpora"
SHIPPED_FILES = ("*.wav", "*.json", "*.txt", "*.md")


class BuildWithCorpora(build_py):
    """build_py, then the corpora (audio, manifests, texts, licences; no caches) as package data."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "harness" / "corpus" / "shipped" / "corpora"
        for path in sorted(CORPORA.rglob("*")):
            relative = path.relative_to(CORPORA)
            if path.is_file() and ".cache" not in relative.parts and any(path.match(p) for p in SHIPPED_FILES):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / relative)


setup(cmdclass={"build_py": BuildWithCorpora})
