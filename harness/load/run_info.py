"""run.json's contents: the run's settings, and what reproducing it needs beside them.

Every option with its default (the parsed command line), the load settings, the embedded
simulator's settings (`SimConfig.describe()`), the command line itself, the versions of Python and
of the packages that shape a measurement, the harness's git commit when it runs from a checkout,
and the host (CPU count, load average). Credentials never land here: URLs lose their user info
and key parameters, the value of any key/token/auth option and of `Bearer ...` is REDACTED, and
so is the API key's value wherever it appears. Locust-free: `harness run`'s own process, the
Locust master's quit hook and `harness finalize`'s callers all use it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.trace import redact_url
from harness.trace.scrub import REDACTED

VERSIONED_PACKAGES = ("realtime-voice-harness", "locust", "websockets", "numpy", "pandas", "plotly", "pyarrow",
                      "orjson", "soundfile", "openai")
# argv options whose value is a credential (never an env-var name: --api-key-env stays)
SECRET_OPTION = re.compile(r"^--?[\w-]*(api-key|apikey|token|secret|password|authorization|bearer)(?<!-env)$", re.I)
SECRET_ENV_VARS = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")


def _secret_values(extra_env: str = "") -> list[str]:
    """The API keys this process could send (from the environment), so none is written literally."""
    names = {*SECRET_ENV_VARS, *([extra_env] if extra_env else [])}
    return [v for v in (os.environ.get(n, "") for n in names) if len(v) >= 6]


def redact_text(text: str, secrets: list[str]) -> str:
    """`text` with URLs' credentials removed, `Bearer X` and every known key value replaced."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = re.sub(r"(?i)\b(bearer\s+)\S+", lambda m: m.group(1) + REDACTED, text)
    if "://" in text and text.split("://", 1)[0].isalpha():
        text = redact_url(text)
    return text


def redact_argv(argv: list[str], api_key_env: str = "") -> list[str]:
    """A command line as run.json keeps it: credentials (URL user info and key parameters, the
    value of any key/token/auth option, `Bearer ...`, the API key's value) become REDACTED."""
    secrets, out, hide_next = _secret_values(api_key_env), [], False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        name, eq, value = arg.partition("=")
        if arg.startswith("-") and SECRET_OPTION.match(name):
            out.append(f"{name}={REDACTED}" if eq else name)
            hide_next = not eq
            continue
        is_option_value = eq and arg.startswith("--")
        out.append(f"{name}={redact_text(value, secrets)}" if is_option_value else redact_text(arg, secrets))
    return out


def redact_options(options: dict[str, Any], api_key_env: str = "") -> dict[str, Any]:
    """Parsed options for run.json: the same redaction as `redact_argv`, on every string value."""
    secrets = _secret_values(api_key_env)

    def clean(key: str, value: Any) -> Any:
        if isinstance(value, str):
            secret_option = SECRET_OPTION.match("--" + key.replace("_", "-"))
            return REDACTED if value and secret_option else redact_text(value, secrets)
        if isinstance(value, (list, tuple)):
            return [clean(key, v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value if isinstance(value, (int, float, bool, type(None), dict)) else str(value)

    return {k: clean(k, v) for k, v in sorted(options.items()) if not callable(v)}


@functools.lru_cache(maxsize=1)
def harness_git_commit() -> dict[str, Any] | None:
    """The commit of the checkout the harness package runs from (None: installed, or no git):
    only a repository whose top level holds this very package counts."""
    package = Path(__file__).resolve().parents[1]   # harness/
    try:
        def git(*words: str) -> str:
            return subprocess.run(["git", "-C", str(package), *words], capture_output=True, text=True, timeout=5,
                                  check=True).stdout.strip()

        top = Path(git("rev-parse", "--show-toplevel")).resolve()
        if top / package.name != package:
            return None
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(api_key_env: str = "") -> dict[str, Any]:
    """What reproducing a run needs beside its options: the command line, versions, the harness's
    commit, and the host (CPU count, load average)."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    try:
        load_average: list[float] | None = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load_average = None
    program = "harness" if Path(sys.argv[0]).name == "__main__.py" else Path(sys.argv[0]).name
    return {"argv": redact_argv([program, *sys.argv[1:]], api_key_env), "versions": versions,
            "git": harness_git_commit(),
            "host": {"cpu_count": os.cpu_count(), "load_average_1_5_15": load_average,
                     "platform": platform.platform(), "python_executable": sys.executable}}


def run_info(settings: Any, users: Any, spawn_rate: Any, run_time: Any, *, options: dict[str, Any] | None = None,
             simulator: dict[str, Any] | None = None) -> dict[str, Any]:
    """run.json: the run's settings (every option with its default when `options`, the parsed
    command line, is given), the embedded simulator's (`SimConfig.describe()`), and provenance."""
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)} \
        if dataclasses.is_dataclass(settings) else {}
    info = {"run_id": settings.run_id, "target": redact_url(settings.target), "dialect": settings.dialect,
            "format": settings.fmt, "corpus": settings.corpus, "corpus_path": str(Path(settings.corpus).resolve()),
            "scenarios": settings.mix, "turns": settings.turns,
            "users": users, "spawn_rate": spawn_rate, "run_time": run_time, "chunk_ms": settings.chunk_ms, "rtf": settings.rtf,
            "turn_timeout_s": settings.turn_timeout_s, "slos": list(settings.slos),
            "pacing_limit_ms": settings.pacing_limit_ms,
            # corpus_path: the absolute folder, so bundles find the audio wherever the run was started
            "settings": redact_options(fields, settings.api_key_env),
            "options": redact_options(options, settings.api_key_env) if options is not None else None,
            **provenance(settings.api_key_env),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if simulator is not None:
        info["simulator"] = simulator
    return info
