"""A bundle's session settings for a replay in another dialect or format.

A replay sends the session settings the original caller sent (`bundle.json` `session_update`,
the same body as the trace header's `session_config`), parsed in the recorded dialect and
rendered in the replay's. Most fields map one to one (`harness.protocol.session` renders both
shapes from one neutral config); the few that exist in one dialect only are converted or left
out, and every such change is said, never made silently:

- a GA-only voice (`marin`, `cedar`) or a custom voice (`{"id": ...}`) in a beta replay becomes
  the beta default voice (`alloy`);
- beta's `temperature` has no GA equivalent: a GA replay leaves it out.
"""

from __future__ import annotations

from typing import Any

from harness.protocol import AudioFormat, Dialect, ProtocolValueError, SessionConfig, default_session_config, \
    parse_session_update

# realtime-protocol.md ("Voices"): alloy ash ballad coral echo sage shimmer verse in both dialects,
# plus marin and cedar (and custom {id} voices) in GA only. harness.protocol.session.VOICES accepts
# all of them in either dialect, so the rule is kept here until the protocol layer has it.
GA_ONLY_VOICES = frozenset({"marin", "cedar"})


def replay_session_config(body: Any, recorded: Dialect | str, target: Dialect | str,
                          fmt: AudioFormat | str) -> tuple[SessionConfig | None, list[str]]:
    """The config to send in `target`/`fmt`, from the recorded `session` body of a
    `session.update` in `recorded`, and the notes on what had to change (one line each).

    None (no notes) when nothing was recorded: the scenario's own defaults for `target` apply.
    """
    recorded, target, fmt = Dialect(recorded), Dialect(target), AudioFormat(fmt)
    if body is None:
        return None, []
    notes: list[str] = []
    try:
        cfg = parse_session_update(body, recorded, default_session_config(recorded))
    except ProtocolValueError as exc:
        notes.append(f"the recorded session.update does not parse as {recorded.value} ({exc.code}: {exc}); "
                     f"the replay uses the {target.value} defaults")
        cfg = default_session_config(target)
    cfg.input_format = cfg.output_format = fmt
    if target is recorded:
        return cfg, notes
    if target is Dialect.BETA:
        beta_voice = default_session_config(Dialect.BETA).voice
        if isinstance(cfg.voice, dict):
            notes.append(f"voice {{'id': {cfg.voice.get('id')!r}}} is a custom GA voice with no beta equivalent; "
                         f"the beta replay uses {beta_voice!r} (the beta default)")
            cfg.voice = beta_voice
        elif cfg.voice in GA_ONLY_VOICES:
            notes.append(f"voice {cfg.voice!r} is GA-only; the beta replay uses {beta_voice!r} (the beta default)")
            cfg.voice = beta_voice
    elif cfg.temperature is not None:
        notes.append(f"temperature {cfg.temperature:g} is beta-only and has no GA equivalent; the GA replay leaves "
                     "it out")
        cfg.temperature = None
    return cfg, notes
