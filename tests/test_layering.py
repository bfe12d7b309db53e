"""The import boundaries of DESIGN.md section 2, checked by parsing every module's imports.

`check(root)` works on any folder laid out like `harness/`, so the self-tests below plant a small
fake package per kind of violation in `tmp_path` and hold the checker to reporting it; a clean
planted tree must pass. What the checker reads, in every module (`cli.py`, `__init__.py` and
`__main__.py` included):

- every `import` and `from ... import`, wherever it is: inside functions, under
  `if TYPE_CHECKING:`, in `try:` blocks;
- relative imports resolved against the file's real package (`from .. import load` in
  `harness/protocol/codec.py` is `harness.load`), and `from harness import x` resolved to the
  module `x` when `x` is a module or package, to `harness` itself otherwise;
- `importlib.import_module(...)` and `__import__(...)`: a literal name is an import like any
  other; any other argument is a violation, except in `cli`, whose names come from its `COMMANDS`
  table, which is read and checked instead.

The rules: only the units (top-level modules and packages) of `RULES` may exist; each may import
only what its entry lists (a whole unit, or single modules of one); nothing imports `cli`; a few
third-party packages have one owner; `protocol`, `audio`, `trace` and `metrics` import no I/O
module; no import cycle crosses two units; `rundir` never reaches locust or gevent, even through
the modules it imports.
"""

from __future__ import annotations

import ast
import textwrap
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "harness"


@dataclass(frozen=True)
class Unit:
    """One top-level module or package of harness/: what it may import, and why."""

    why: str
    may_import: frozenset[str] = frozenset()


def _unit(why: str, *may_import: str) -> Unit:
    """`may_import` names other units ("trace") or single modules of one ("protocol.formats")."""
    return Unit(why, frozenset(may_import))


# The units of DESIGN section 2 and their allowed imports of the rest of the package (a unit may
# always import itself). A unit not in this table may not exist.
RULES: dict[str, Unit] = {
    "__init__": _unit("the package root (`harness`): a docstring and __version__, nothing imported"),
    "protocol": _unit("sans-I/O protocol: imports nothing else from the package (DESIGN)"),
    "trace": _unit("the trace schema, recorder and reader: imports nothing else from the package (DESIGN)"),
    "audio": _unit("pure functions on arrays: only the format types of protocol (DESIGN)", "protocol.formats"),
    "corpus": _unit("manifests and annotation, over audio and the format types", "audio", "protocol"),
    "metrics": _unit("pure functions of traces, replayed through protocol's connection model (DESIGN)",
                     "trace", "protocol"),
    "runtime": _unit("process-wide settings (the garbage collector's policy) of the caller's and the "
                     "simulator's processes: imports nothing else from the package"),
    "exit_codes": _unit("the process exit codes of every command, defined once: imports nothing else from the "
                        "package"),
    "client": _unit("the session driver; feeds metrics' incremental turn matcher live (DESIGN)",
                    "protocol", "audio", "corpus", "trace", "metrics", "runtime"),
    "scenarios": _unit("what a caller does, as flows over the driver", "protocol", "audio", "corpus", "trace",
                       "client", "metrics"),
    "sim": _unit("the simulator reuses protocol and audio, and reads corpora to recognise the caller",
                 "protocol", "audio", "corpus", "runtime"),
    "report": _unit("tables, figures and HTML from a run's files: the trace and turn-record types; never "
                    "load or replay", "metrics", "trace", "protocol", "exit_codes"),
    "replay": _unit("re-drives a bundle with the caller and the simulator; uses report one way, only to draw "
                    "a bundle's session timeline (plotly lives in report alone, and report imports no replay); from "
                    "load only its locust-free options module, for the same --auth/--api-key-env check as harness run",
                    "protocol", "audio", "corpus", "trace", "client", "scenarios", "metrics", "sim", "report",
                    "load.options", "exit_codes"),
    "load": _unit("the Locust side and `harness run`; the run directory is assembled by rundir, so load "
                  "imports neither report nor replay (DESIGN)",
                  "protocol", "audio", "corpus", "trace", "client", "scenarios", "metrics", "sim", "rundir", "runtime", "exit_codes"),
    "rundir": _unit("the one run-assembly module above load, report and replay (DESIGN); from load only the "
                    "locust-free modules that define the run's record files and gates",
                    "load.records", "load.slo", "load.junit", "report", "replay.bundle", "metrics", "trace", "exit_codes"),
    "finalize": _unit("`harness finalize RUN_DIR`: completes an interrupted run directory through rundir, the "
                      "one run-assembly module; reads trace headers for runs without run.json", "rundir", "trace"),
    "cli": _unit("the top of the stack: imports the subcommands of COMMANDS lazily, by name"),
    "__main__": _unit("`python -m harness`, the only importer of cli; nothing imports it", "cli"),
}
RULES["cli"] = _unit(RULES["cli"].why, *(set(RULES) - {"cli", "__main__"}))

# Units whose non-literal dynamic imports take their names from a table, and the table's name.
NAMES_TABLE = {"cli": "COMMANDS"}

# Third-party packages with one owning unit (DESIGN), and packages a unit must not import.
ONLY_IMPORTERS: dict[str, frozenset[str]] = {
    "locust": frozenset({"load"}), "gevent": frozenset({"load"}),
    "pandas": frozenset({"report"}), "plotly": frozenset({"report"}),
}
NOT_IMPORTED_BY: dict[str, frozenset[str]] = {"protocol": frozenset({"numpy"}), "trace": frozenset({"numpy"})}

# Units without I/O (DESIGN), and the I/O modules they must not import: DESIGN's list, then the same
# thing by other names (a dotted entry bans that module and its submodules only).
NO_IO_UNITS = frozenset({"protocol", "audio", "trace", "metrics"})
IO_MODULES = frozenset({"socket", "ssl", "asyncio", "threading", "websockets", "selectors", "subprocess", "gevent",
                        "_thread", "multiprocessing", "concurrent", "http.client", "http.server", "urllib.request"})

# Third-party packages a unit must not reach even through the harness modules it imports.
MUST_NOT_REACH: dict[str, tuple[frozenset[str], str]] = {
    "rundir": (frozenset({"locust", "gevent"}),
               "`harness run` assembles the run in its own process, which must never load Locust or gevent's "
               "monkey-patching"),
    "finalize": (frozenset({"locust", "gevent"}),
                 "`harness finalize` assembles a run as `harness run` does, in a process without Locust"),
    "replay": (frozenset({"locust", "gevent"}),
               "`harness replay` runs its callers on plain threads; gevent's monkey-patching must never load"),
}

# Existing offenders, each allowed precisely (file, imported module, rule) and only until it is fixed.
# The test reports every entry as a warning, and fails once an entry matches nothing: delete it then.
KNOWN_EXCEPTIONS: dict[tuple[str, str, str], str] = {
    # none: an offender the boundaries must tolerate for a while is listed here, with its reason
}


# ---------------------------------------------------------------------------------------------
# The checker


@dataclass(frozen=True, order=True)
class Violation:
    path: str      # "harness/load/command.py", relative to the root's parent
    line: int
    rule: str      # escape, unknown, layer, cli, dynamic, commands, owner, banned, io, cycle, reach
    imported: str  # the module imported (or the unit found, for `unknown`)
    message: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.path, self.imported, self.rule

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


@dataclass(frozen=True, order=True)
class Import:
    line: int
    module: str                    # the resolved absolute module name
    how: str = "import"            # import, dynamic (literal name), unseen (non-literal), command, escape
    also: tuple[str, ...] = ()     # for `from m import a` of a non-harness m: m.a, in case a is a module


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def unit_of(root: Path, path: Path) -> str:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else path.stem


def module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_internal(root: Path, name: str) -> bool:
    return name == root.name or name.startswith(root.name + ".")


def module_path(root: Path, name: str) -> Path | None:
    """The file (or namespace folder) of an internal module name, None when there is none."""
    parts = name.split(".")[1:]
    if not parts:
        return root / "__init__.py" if (root / "__init__.py").is_file() else None
    base = root.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.is_dir() and any(base.rglob("*.py")):
        return base
    return None


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name in {"import_module", "__import__"}


def imports_of(root: Path, path: Path) -> list[Import]:
    """Every import of the module at `path`, resolved to absolute module names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own = module_name(root, path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[Import] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(Import(node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 >= len(parts):
                    found.add(Import(node.lineno, "." * node.level + (node.module or ""), "escape"))
                    continue
                base = ".".join(parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if not _is_internal(root, base):
                    found.add(Import(node.lineno, base, also=(candidate,)))
                elif alias.name != "*" and module_path(root, candidate) is not None:
                    found.add(Import(node.lineno, candidate))
                else:
                    found.add(Import(node.lineno, base))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func):
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
                found.add(Import(node.lineno, arg.value, "dynamic"))
            else:
                found.add(Import(node.lineno, ast.unparse(arg) if arg is not None else "?", "unseen"))
    return sorted(found)


def table_modules(path: Path, table: str) -> tuple[list[Import], list[tuple[int, str]]]:
    """The module names of a module-level `TABLE = {name: ("module", ...), ...}`, and the entries
    that are not of that shape (line, text). A missing table is one such entry, at line 0."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        targets: list[ast.expr]
        value: ast.expr | None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        if not any(isinstance(t, ast.Name) and t.id == table for t in targets):
            continue
        if not isinstance(value, ast.Dict):
            return [], [(node.lineno, f"{table} is not a dict literal")]
        found, bad = [], []
        for entry in value.values:
            first = entry.elts[0] if isinstance(entry, (ast.Tuple, ast.List)) and entry.elts else entry
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append(Import(entry.lineno, first.value, "command"))
            else:
                bad.append((entry.lineno, ast.unparse(entry)))
        return found, bad
    return [], [(0, f"no module-level {table} table")]


def _matches(name: str, banned: Iterable[str]) -> str | None:
    for entry in sorted(banned):
        if name == entry or name.startswith(entry + "."):
            return entry
    return None


class _Checker:
    def __init__(self, root: Path, rules: Mapping[str, Unit]) -> None:
        self.root, self.rules = root, rules
        self.violations: set[Violation] = set()
        self.files = {module_name(root, p): p for p in python_files(root)}
        self.imports = {name: imports_of(root, p) for name, p in self.files.items()}
        self.graph: dict[str, list[tuple[str, int]]] = {name: [] for name in self.files}

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root.parent).as_posix()

    def add(self, path: Path, line: int, rule: str, imported: str, message: str) -> None:
        self.violations.add(Violation(self.rel(path), line, rule, imported, message))

    def run(self) -> list[Violation]:
        self.unknown_units()
        for name, path in self.files.items():
            unit = unit_of(self.root, path)
            if unit not in self.rules:
                continue  # reported by unknown_units
            imports = self.imports[name]
            if unit in NAMES_TABLE:
                imports = self.with_table(path, unit, imports)
            for imp in imports:
                self.check_import(path, unit, imp)
                if imp.how != "escape" and _is_internal(self.root, imp.module):
                    self.add_edges(name, imp)
        self.cycles()
        self.reach()
        return sorted(self.violations)

    def with_table(self, path: Path, unit: str, imports: list[Import]) -> list[Import]:
        """The unit's imports with the names of its table in place of its by-name imports, which are
        kept (and reported) when the table is missing or has an entry the checker cannot read."""
        commands, bad = table_modules(path, NAMES_TABLE[unit])
        unseen = any(i.how == "unseen" for i in imports)
        for line, text in bad:
            if line or unseen:  # a missing table matters only to a unit that imports by name
                self.add(path, line, "commands", text, f"{unit} imports by name, but {text}: the checker "
                         "cannot see what it imports")
        return [i for i in imports if i.how != "unseen" or bad] + commands

    def unknown_units(self) -> None:
        for child in sorted(self.root.iterdir()):
            is_module = child.is_file() and child.suffix == ".py"
            is_package = child.is_dir() and child.name != "__pycache__" and any(child.rglob("*.py"))
            name = child.stem if is_module else child.name
            if (is_module or is_package) and name not in self.rules:
                self.add(child, 0, "unknown", name, f"{self.rel(child)} is not a unit of the rules table: "
                         "add it to RULES (and to DESIGN section 2) or move it into a package")

    def check_import(self, path: Path, unit: str, imp: Import) -> None:
        rule = self.rules[unit]
        if imp.how == "escape":
            self.add(path, imp.line, "escape", imp.module, f"`from {imp.module} import` climbs out of the "
                     f"{self.root.name} package")
            return
        if imp.how == "unseen":
            self.add(path, imp.line, "dynamic", imp.module, f"a dynamic import of {imp.module}: the checker cannot "
                     "see what it imports; import by a literal name")
            return
        if _is_internal(self.root, imp.module):
            self.check_internal(path, unit, rule, imp)
            return
        if imp.how == "command":
            self.add(path, imp.line, "commands", imp.module, f"{NAMES_TABLE[unit]} names {imp.module}, which is "
                     f"not a {self.root.name} module")
            return
        names = (imp.module, *imp.also)
        top = imp.module.split(".")[0]
        owners = ONLY_IMPORTERS.get(top)
        if owners is not None and unit not in owners:
            self.add(path, imp.line, "owner", top, f"only {', '.join(sorted(owners))} may import {top}; {unit} "
                     f"imports {imp.module}")
        if top in NOT_IMPORTED_BY.get(unit, frozenset()):
            self.add(path, imp.line, "banned", top, f"{unit} must not import {top}")
        if unit in NO_IO_UNITS:
            hit = next((m for m in (_matches(n, IO_MODULES) for n in names) if m), None)
            if hit:
                self.add(path, imp.line, "io", hit, f"{unit} does no I/O (DESIGN), but imports {hit}")

    def check_internal(self, path: Path, unit: str, rule: Unit, imp: Import) -> None:
        parts = imp.module.split(".")[1:] or ["__init__"]
        target = parts[0]
        if imp.how == "command" and target == unit:
            self.add(path, imp.line, "commands", imp.module, f"{NAMES_TABLE[unit]} names {imp.module}, which is "
                     f"{unit} itself")
        if target == unit:
            return
        if imp.how == "command" and module_path(self.root, imp.module) is None:
            self.add(path, imp.line, "commands", imp.module, f"{NAMES_TABLE[unit]} names {imp.module}, which does "
                     "not exist")
        if target not in self.rules:
            self.add(path, imp.line, "unknown", imp.module, f"{unit} imports {imp.module}, whose {target} is not a "
                     "unit of the rules table")
        elif target in {"cli", "__main__"} and target not in rule.may_import:
            self.add(path, imp.line, "cli", imp.module, f"nothing imports {self.root.name}.{target} "
                     "(only __main__, the `python -m` entry, imports cli)")
        elif not any(parts[: len(a.split("."))] == a.split(".") for a in rule.may_import):
            allowed = ", ".join(sorted(rule.may_import)) or "nothing else of the package"
            self.add(path, imp.line, "layer", imp.module, f"{unit} may not import {imp.module}; it may import "
                     f"{allowed} ({rule.why})")

    def add_edges(self, name: str, imp: Import) -> None:
        """An import of a.b.c runs a, a.b and a.b.c: an edge to each that is a file of the tree."""
        parts = imp.module.split(".")
        for end in range(1, len(parts) + 1):
            target = ".".join(parts[:end])
            if target in self.files and target != name:
                self.graph[name].append((target, imp.line))

    def cycles(self) -> None:
        for component in _strongly_connected(self.graph):
            units = {unit_of(self.root, self.files[m]) for m in component}
            if len(units) < 2:
                continue  # a circle inside one unit is that unit's business
            for source in sorted(component):
                for target, line in self.graph[source]:
                    if target in component and unit_of(self.root, self.files[target]) != unit_of(self.root, self.files[source]):
                        self.add(self.files[source], line, "cycle", target, f"{source} -> {target} closes an import "
                                 f"cycle across {', '.join(sorted(units))}: {', '.join(sorted(component))}")

    def reach(self) -> None:
        for unit, (banned, why) in MUST_NOT_REACH.items():
            starts = sorted(n for n, p in self.files.items() if unit_of(self.root, p) == unit)
            came_from: dict[str, tuple[str, int] | None] = {n: None for n in starts}
            queue = deque(starts)
            while queue:
                current = queue.popleft()
                for target, line in sorted(self.graph[current]):
                    if target not in came_from:
                        came_from[target] = (current, line)
                        queue.append(target)
            for name in sorted(came_from):
                if unit_of(self.root, self.files[name]) == unit:
                    continue  # its own imports are checked by the owner rules
                for imp in self.imports[name]:
                    top = imp.module.split(".")[0]
                    if top in banned and not _is_internal(self.root, imp.module):
                        chain, step = [name], came_from[name]
                        while step is not None:
                            chain.append(step[0])
                            first_line, step = step[1], came_from[step[0]]
                        chain.reverse()
                        self.add(self.files[chain[0]], first_line, "reach", top, f"{unit} reaches {top} through "
                                 f"{' -> '.join(chain)} (line {imp.line}): {why}")


def _strongly_connected(graph: Mapping[str, list[tuple[str, int]]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit to meet)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted({t for t, _ in graph[start]})))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted({t for t, _ in graph[child]}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def check(root: Path, rules: Mapping[str, Unit] = RULES) -> list[Violation]:
    """Every violation of the rules in the package tree at `root` (a folder named like the package)."""
    return _Checker(root, rules).run()


# ---------------------------------------------------------------------------------------------
# The real tree


class KnownLayeringException(UserWarning):
    """An offender still allowed by KNOWN_EXCEPTIONS."""


def test_harness_keeps_the_import_boundaries_of_design_section_2() -> None:
    unexpected = [v for v in check(PACKAGE_ROOT) if v.key not in KNOWN_EXCEPTIONS]
    assert not unexpected, "\n".join(str(v) for v in unexpected)


def test_every_known_exception_still_matches_an_offender_and_is_reported() -> None:
    found = {v.key: v for v in check(PACKAGE_ROOT)}
    stale = [key for key in KNOWN_EXCEPTIONS if key not in found]
    assert not stale, f"fixed, so delete from KNOWN_EXCEPTIONS: {stale}"
    for key, why in KNOWN_EXCEPTIONS.items():
        warnings.warn(f"layering exception still allowed: {found[key]} ({why})", KnownLayeringException)


def test_the_rules_table_holds_exactly_the_units_that_exist_each_with_a_reason() -> None:
    design = {"protocol", "audio", "corpus", "trace", "client", "scenarios", "metrics", "sim", "load", "report", "cli"}
    existing = {unit_of(PACKAGE_ROOT, p) for p in python_files(PACKAGE_ROOT)}
    assert design <= existing
    assert existing == set(RULES), "a unit in RULES without code is stale; one in the code without a rule is unknown"
    assert all(unit.why for unit in RULES.values())
    for unit in RULES.values():
        for allowed in unit.may_import:
            assert allowed.split(".")[0] in RULES, allowed
            assert module_path(PACKAGE_ROOT, f"harness.{allowed}") is not None, allowed


def test_every_subcommand_of_the_cli_is_read_from_its_commands_table() -> None:
    commands, bad = table_modules(PACKAGE_ROOT / "cli.py", "COMMANDS")
    assert not bad
    assert {i.module for i in commands} >= {"harness.load.command", "harness.report.command_report",
                                            "harness.replay.command", "harness.sim.command"}
    assert all(module_path(PACKAGE_ROOT, i.module) for i in commands)


# ---------------------------------------------------------------------------------------------
# Self-tests: planted trees

CLEAN_TREE: dict[str, str] = {
    "__init__.py": '__version__ = "0"\n',
    "__main__.py": "from harness.cli import main\nmain()\n",
    "cli.py": """
        import importlib
        from harness import __version__
        COMMANDS = {"run": ("harness.load.command", "run"), "report": ("harness.report.command", "report")}
        def main(name="run"):
            return importlib.import_module(COMMANDS[name][0])
    """,
    "rundir.py": """
        import numpy as np
        from harness.load.records import merged_records
        from harness.load import slo
        from harness.load.junit import write_junit
        from harness.report import build_report
        from harness.replay.bundle import write_bundles
        from harness.metrics import summarize
        from harness.trace import read_trace
    """,
    "protocol/__init__.py": "from .formats import AudioFormat\nfrom . import codec\n",
    "protocol/formats.py": "import enum\nclass AudioFormat(enum.Enum):\n    PCM16 = 'pcm16'\n",
    "protocol/codec.py": "import json\nfrom harness.protocol.formats import AudioFormat\nfrom .formats import AudioFormat as F\n",
    "audio/__init__.py": """
        from typing import TYPE_CHECKING
        import numpy as np
        from harness.protocol import formats
        if TYPE_CHECKING:
            from harness.protocol.formats import AudioFormat
    """,
    "trace/__init__.py": "import json\nfrom urllib.parse import urlsplit\n",
    "corpus/__init__.py": "from harness.audio import x\nfrom harness.protocol import AudioFormat\n",
    "metrics/__init__.py": "import numpy as np\nfrom harness.trace import read_trace\nfrom harness.protocol import codec\n",
    "client/__init__.py": "import socket, ssl, threading\nimport websockets.sync.client\nfrom harness.metrics import x\n",
    "scenarios/__init__.py": "from harness.client import Session\n",
    "sim/__init__.py": "import asyncio\nfrom harness.protocol import codec\nfrom harness.audio import x\n",
    "report/__init__.py": "import pandas as pd\nimport plotly.graph_objects as go\nfrom harness.metrics import x\n",
    "report/command.py": "from . import build_report\nfrom .. import trace\n",
    "replay/__init__.py": "",
    "replay/bundle.py": "def write_bundles():\n    from harness.report import render_session_timeline\n",
    "load/__init__.py": "",
    "load/records.py": "import json, threading\n",
    "load/slo.py": "from harness.metrics import x\n",
    "load/junit.py": "from xml.sax.saxutils import escape\n",
    "load/command.py": "import subprocess\nfrom harness.rundir import finalize_run\nfrom .slo import load_slos\n",
    "load/users.py": "import gevent\nfrom locust import User\nfrom harness.rundir import finalize_run\nfrom ..scenarios import run\n",
}


def _plant(tmp_path: Path, changes: Mapping[str, str | None]) -> Path:
    """The clean tree under tmp_path/harness, with `changes` (None deletes a file)."""
    root = tmp_path / "harness"
    files: dict[str, str | None] = {**CLEAN_TREE, **changes}
    for rel, text in files.items():
        if text is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def _caught(tmp_path: Path, changes: Mapping[str, str | None]) -> set[tuple[str, str, str]]:
    return {v.key for v in check(_plant(tmp_path, changes))}


def _with(rel: str, extra: str) -> dict[str, str]:
    """The clean tree's file `rel` with `extra` lines appended."""
    return {rel: textwrap.dedent(CLEAN_TREE[rel]) + textwrap.dedent(extra)}


def test_a_clean_planted_tree_passes(tmp_path: Path) -> None:
    assert check(_plant(tmp_path, {})) == []


def test_a_relative_import_that_escapes_its_package_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("protocol/codec.py", "from .. import load\nfrom ..report.command import x\n"))
    assert ("harness/protocol/codec.py", "harness.load", "layer") in caught
    assert ("harness/protocol/codec.py", "harness.report.command", "layer") in caught


def test_a_relative_import_that_climbs_out_of_the_whole_package_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("protocol/codec.py", "from ... import elsewhere\n"))
    assert ("harness/protocol/codec.py", "...", "escape") in caught


def test_a_relative_import_in_a_package_init_is_resolved_from_that_package(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("protocol/__init__.py", "from .. import trace\n"))
    assert caught == {("harness/protocol/__init__.py", "harness.trace", "layer")}


def test_from_harness_import_a_package_in_protocol_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("protocol/codec.py", "from harness import load\n"))
    assert ("harness/protocol/codec.py", "harness.load", "layer") in caught


def test_an_import_inside_a_function_or_under_type_checking_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("trace/__init__.py", """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from harness.protocol import AudioFormat
        def late():
            import harness.metrics
    """))
    assert ("harness/trace/__init__.py", "harness.protocol", "layer") in caught
    assert ("harness/trace/__init__.py", "harness.metrics", "layer") in caught


def test_audio_importing_more_of_protocol_than_its_format_types_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("audio/__init__.py", "from harness.protocol import AudioFormat\n"
                                                          "from harness.protocol.codec import decode\n"))
    assert ("harness/audio/__init__.py", "harness.protocol", "layer") in caught
    assert ("harness/audio/__init__.py", "harness.protocol.codec", "layer") in caught


def test_an_unknown_top_level_module_or_package_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, {"plugins.py": "", "extras/__init__.py": "", "loose/helpers.py": ""})
    assert {("harness/plugins.py", "plugins", "unknown"), ("harness/extras", "extras", "unknown"),
            ("harness/loose", "loose", "unknown")} <= caught


def test_an_import_of_a_unit_missing_from_the_rules_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("load/command.py", "import harness.plugins.x\n"))
    assert ("harness/load/command.py", "harness.plugins.x", "unknown") in caught


def test_an_import_of_cli_is_caught_however_it_is_written(tmp_path: Path) -> None:
    caught = _caught(tmp_path, {
        **_with("metrics/__init__.py", "import harness.cli\n"),
        **_with("load/slo.py", "from harness import cli\n"),
        **_with("report/command.py", "from ..cli import main\n"),
        **_with("rundir.py", "from . import cli\n"),
    })
    assert {("harness/metrics/__init__.py", "harness.cli", "cli"), ("harness/load/slo.py", "harness.cli", "cli"),
            ("harness/report/command.py", "harness.cli", "cli"), ("harness/rundir.py", "harness.cli", "cli")} <= caught


def test_cli_is_checked_too(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("cli.py", "import harness.__main__\nimport locust\n"))
    assert ("harness/cli.py", "harness.__main__", "cli") in caught
    assert ("harness/cli.py", "locust", "owner") in caught


def test_a_commands_entry_naming_cli_a_missing_module_or_a_foreign_one_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, {"cli.py": """
        import importlib
        COMMANDS = {"a": ("harness.cli", ""), "b": ("harness.load.nothere", ""), "c": ("os", ""), "d": (NAME, "")}
        def main(name):
            return importlib.import_module(COMMANDS[name][0])
    """})
    assert {("harness/cli.py", "harness.cli", "commands"), ("harness/cli.py", "harness.load.nothere", "commands"),
            ("harness/cli.py", "os", "commands"), ("harness/cli.py", "(NAME, '')", "commands")} <= caught


def test_cli_importing_by_name_without_a_commands_table_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, {"cli.py": "import importlib\ndef main(n):\n    return importlib.import_module(n)\n"})
    assert ("harness/cli.py", "no module-level COMMANDS table", "commands") in caught


def test_a_dynamic_import_outside_cli_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, {
        **_with("load/command.py", "import importlib\nimportlib.import_module('harness.report')\n"),
        **_with("metrics/__init__.py", "def f(name):\n    return __import__(name)\n"),
        **_with("trace/__init__.py", "from importlib import import_module\nimport_module('socket')\n"),
    })
    assert ("harness/load/command.py", "harness.report", "layer") in caught
    assert ("harness/metrics/__init__.py", "name", "dynamic") in caught
    assert ("harness/trace/__init__.py", "socket", "io") in caught


def test_an_io_module_in_a_unit_without_io_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, {
        **_with("metrics/__init__.py", "import socket\n"),
        **_with("trace/__init__.py", "def f():\n    import asyncio.events\n"),
        **_with("protocol/codec.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import threading\n"),
        **_with("audio/__init__.py", "from urllib import request\nfrom concurrent.futures import Future\n"),
    })
    assert {("harness/metrics/__init__.py", "socket", "io"), ("harness/trace/__init__.py", "asyncio", "io"),
            ("harness/protocol/codec.py", "threading", "io"), ("harness/audio/__init__.py", "urllib.request", "io"),
            ("harness/audio/__init__.py", "concurrent", "io")} <= caught


def test_pandas_or_plotly_outside_report_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, {**_with("metrics/__init__.py", "def f():\n    import pandas as pd\n"),
                                **_with("load/command.py", "from plotly import graph_objects\n")})
    assert ("harness/metrics/__init__.py", "pandas", "owner") in caught
    assert ("harness/load/command.py", "plotly", "owner") in caught


def test_locust_or_gevent_outside_load_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, {**_with("scenarios/__init__.py", "from locust import events\n"),
                                **_with("rundir.py", "import gevent\n")})
    assert ("harness/scenarios/__init__.py", "locust", "owner") in caught
    assert ("harness/rundir.py", "gevent", "owner") in caught


def test_numpy_in_protocol_or_trace_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, {**_with("protocol/codec.py", "import numpy\n"),
                                **_with("trace/__init__.py", "from numpy import asarray\n")})
    assert {("harness/protocol/codec.py", "numpy", "banned"), ("harness/trace/__init__.py", "numpy", "banned")} <= caught


def test_load_importing_report_or_replay_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("load/users.py", "from harness.report import build_report\n"
                                                      "from harness.replay.bundle import write_bundles\n"))
    assert ("harness/load/users.py", "harness.report", "layer") in caught
    assert ("harness/load/users.py", "harness.replay.bundle", "layer") in caught


def test_report_importing_load_or_replay_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("report/command.py", "from harness.load import records\n"
                                                          "from ..replay import bundle\n"))
    assert ("harness/report/command.py", "harness.load.records", "layer") in caught
    assert ("harness/report/command.py", "harness.replay.bundle", "layer") in caught


def test_rundir_importing_more_of_load_than_its_run_files_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("rundir.py", "from harness.load.users import RealtimeUser\nimport harness.load\n"))
    assert ("harness/rundir.py", "harness.load.users", "layer") in caught
    assert ("harness/rundir.py", "harness.load", "layer") in caught


def test_an_import_cycle_across_two_units_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("load/records.py", "from harness.rundir import finalize_run\n"))
    assert ("harness/load/records.py", "harness.rundir", "cycle") in caught
    assert ("harness/rundir.py", "harness.load.records", "cycle") in caught


def test_an_import_cycle_through_a_package_init_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, {"load/__init__.py": "from harness.load.users import x\n"})
    assert ("harness/rundir.py", "harness.load", "cycle") in caught


def test_rundir_reaching_gevent_through_a_load_module_is_caught(tmp_path: Path) -> None:
    caught = _caught(tmp_path, _with("load/junit.py", "def f():\n    import gevent.monkey\n"))
    assert ("harness/rundir.py", "gevent", "reach") in caught
