"""The turn record's vocabulary, defined once: its columns, its statuses, its VAD verdicts.

`metrics.turns` builds records with exactly `COLUMNS`; `metrics.summary`, the report's turn
table and `docs/contracts.md` section 5 take the names from here (a test holds the document to
this module).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    TIMEOUT = "timeout"
    ERROR = "error"
    INVALID_PACING = "invalid_pacing"
    STOPPED = "stopped"     # the run ended mid-turn: neither a success nor a timeout


class VadVerdict(StrEnum):
    EARLY = "early"
    LATE = "late"
    MISSED = "missed"
    OK = "ok"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
VAD_VERDICTS: tuple[str, ...] = tuple(v.value for v in VadVerdict)

# Timings a turn whose pacing was invalid does not keep (the caller itself ran late).
LATENCY_COLUMNS: tuple[str, ...] = (
    "ttfa_ms", "ttfa_from_commit_ms", "ttfa_audible_ms", "vad_stop_ms", "vad_commit_ms", "vad_end_error_ms",
    "response_done_ms", "cancel_ack_ms", "cancel_leak_ms", "barge_in_ms", "truncate_ack_ms",
    "tool_args_ms", "tool_roundtrip_ms", "underrun_count", "underrun_ms", "heard_ms", "discarded_ms",
    "endpointing_cost_ms", "network_rtt_ms")

# What the probe scenarios (endpointing, pause_ladder, backchannel, noise_ladder) set per turn
# (from the `probe` field of the turn's `turn_end` mark), and the connection's round trip.
PROBE_COLUMNS: tuple[str, ...] = (
    "turn_detection", "endpointing_cost_ms", "pause_ms", "pause_split", "backchannel_offset_ms",
    "backchannel_cancelled", "snr_db", "network_rtt_ms")

IDENTITY_COLUMNS: tuple[str, ...] = (
    "run_id", "session_id", "worker", "turn", "scenario", "utterance", "format", "dialect", "target",
    "t_start_ns", "t_wall_s", "users")

COLUMNS: tuple[str, ...] = (
    *IDENTITY_COLUMNS, "status", "response_id", "response_status", "response_reason",
    "ttfa_ms", "ttfa_from_commit_ms", "ttfa_audible_ms", "vad_stop_ms", "vad_commit_ms", "vad_end_error_ms",
    "vad_verdict", "response_done_ms", "cancel_ack_ms", "cancel_leak_ms", "barge_in_ms", "truncate_ack_ms",
    "tool_args_ms", "tool_roundtrip_ms", "underrun_count", "underrun_ms", "audio_ms", "leading_silence_ms",
    "transcript", "heard_ms", "discarded_ms", *PROBE_COLUMNS,
    "send_lateness_p50_ms", "send_lateness_p99_ms", "send_lateness_max_ms",
    "incident", "incident_evidence", "violations", "expected_interruption")
