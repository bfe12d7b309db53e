"""The harness options as Locust's web UI and parser see them (in a child process: importing the
Locust side runs gevent's monkey-patching, which the test process must not get)."""

from __future__ import annotations

import json
import subprocess
import sys

from harness.load.command import _locust_command
from harness.load.options import LoadSettings, slo_list

from .runs import REPO

PROBE = """
import json, harness.load.locustfile
from locust import argument_parser
extra = argument_parser.ui_extra_args_dict(["-f", "locustfile.py", "--turns", "2", "--target", "ws://127.0.0.1:9/x"])
parser = argument_parser.get_parser()
web_host = next(a.default for a in parser._actions if a.dest == "web_host")
print(json.dumps({"extra": extra, "web_host": web_host}))
"""


def _probe() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_harness_option_is_in_the_web_ui_with_its_choices_and_default_and_the_ui_binds_to_loopback() -> None:
    found = _probe()
    extra = found["extra"]
    expected = {"dialect", "audio_format", "corpus", "scenario", "scenario_params", "turns", "chunk_ms", "rtf",
                "turn_timeout", "lateness_limit_ms", "pacing_limit_ms", "vad_fallback", "slo", "shape", "out",
                "run_id", "auth", "api_key_env"}
    assert set(extra) == expected   # --target is Locust's own host field, not a second one
    assert extra["dialect"]["choices"] == ["ga", "beta"] and extra["dialect"]["default_value"] == "ga"
    assert extra["audio_format"]["choices"] == ["pcm16", "g711_ulaw", "g711_alaw"]
    assert extra["auth"]["choices"] == ["bearer", "api-key", "none"]
    assert extra["turns"]["default_value"] == 2   # the command line's value is the form's default
    assert all(option["help_text"] for option in extra.values())
    assert not any(option["is_secret"] for option in extra.values())   # no option holds a key: only its variable's name
    assert found["web_host"] == "127.0.0.1"


def test_slos_from_the_web_ui_form_are_one_text_separated_by_semicolons() -> None:
    assert slo_list("ttfa_ms:p95<1200; timeout_rate<0.02 ;") == ["ttfa_ms:p95<1200", "timeout_rate<0.02"]
    assert slo_list(["ttfa_ms:p95<1200"]) == ["ttfa_ms:p95<1200"] and slo_list(None) == [] and slo_list("") == []


def test_harness_run_hands_its_shape_and_the_harness_stop_timeout_to_locust(tmp_path) -> None:
    from types import SimpleNamespace

    options = dict(target="ws://127.0.0.1:9/v1/realtime", host="", dialect="ga", audio_format="pcm16",
                   corpus=str(REPO / "corpora" / "default"), scenario="plain:1", scenario_params="{}", turns=2,
                   chunk_ms=20.0, rtf=1.0, turn_timeout=15.0, lateness_limit_ms=20.0, pacing_limit_ms=5.0, slo=None,
                   out=str(tmp_path), run_id="r1", auth="bearer", api_key_env="")
    args = SimpleNamespace(**options, users=4, spawn_rate=2.0, run_time="20s", processes=0,
                           shape="ramp:users=4,over=10s")
    cmd = _locust_command(args, LoadSettings.from_options(SimpleNamespace(**options)))
    assert cmd[cmd.index("--shape") + 1] == "ramp:users=4,over=10s"
    assert cmd[cmd.index("-s") + 1] == "10"
