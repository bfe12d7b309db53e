"""The import boundaries of DESIGN.md section 2, checked by parsing every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "harness"

# package -> other harness packages it may import (None: any)
ALLOWED_INTERNAL: dict[str, set[str] | None] = {
    "protocol": set(),
    "audio": {"protocol"},  # AudioFormat is a protocol fact (rates, silence bytes); no I/O either way
    "trace": set(),
    "corpus": {"audio", "protocol"},
    "metrics": {"trace", "protocol"},
    "client": {"protocol", "audio", "corpus", "trace"},
    "scenarios": {"protocol", "audio", "corpus", "trace", "client"},
    "sim": {"protocol", "audio", "corpus"},
    "replay": {"protocol", "audio", "corpus", "trace", "client", "scenarios", "metrics", "sim"},
    "load": None,
    "report": {"metrics", "trace", "protocol"},
}
ONLY_IMPORTER = {"locust": "load", "gevent": "load", "pandas": "report", "plotly": "report"}
# `report` may also be used by `load` (to write report.html at the end of a run) and by the CLI.
REPORT_USERS = {"load", "replay"}
NO_THIRD_PARTY = {"protocol": {"numpy"}, "trace": {"numpy"}}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE_ROOT.rglob("*.py"))


def _package_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE_ROOT)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            pkg = _package_of(path)
            names.append(f"harness.{pkg}.{node.module or ''}".rstrip("."))
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_module_respects_the_layering_of_design_section_2(path: Path) -> None:
    pkg = _package_of(path)
    if pkg in {"cli", "__main__", "__init__"}:
        return  # the command line is the top of the stack
    for name in _imports(path):
        top = name.split(".")[0]
        if top in ONLY_IMPORTER and ONLY_IMPORTER[top] != pkg:
            raise AssertionError(f"{path}: only harness.{ONLY_IMPORTER[top]} may import {top}")
        if top in NO_THIRD_PARTY.get(pkg, set()):
            raise AssertionError(f"{path}: {pkg} must not import {top}")
        if top != "harness" or name == "harness":
            continue
        target = name.split(".")[1]
        if target == pkg:
            continue
        if target in {"cli"}:
            raise AssertionError(f"{path}: nothing imports harness.cli")
        if target == "report" and pkg not in REPORT_USERS | {"cli"}:
            raise AssertionError(f"{path}: only cli, load and replay may import harness.report")
        if target == "load" and pkg != "cli":
            raise AssertionError(f"{path}: only cli imports harness.load")
        allowed = ALLOWED_INTERNAL.get(pkg)
        if allowed is not None and target not in allowed and target != "report":
            raise AssertionError(f"{path}: {pkg} may not import harness.{target}")


def test_the_layering_check_sees_every_package_of_design_section_2() -> None:
    packages = {p.name for p in PACKAGE_ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {"protocol", "audio", "corpus", "trace", "client", "scenarios", "metrics", "sim", "load", "report"} <= packages
    assert packages <= set(ALLOWED_INTERNAL)
