"""Metrics and incidents as pure functions of session traces (no network, no pandas)."""

from harness.metrics.incidents import CAUSES, Incident, classify_response
from harness.metrics.record import COLUMNS, LATENCY_COLUMNS, STATUSES, VAD_VERDICTS, Status, VadVerdict
from harness.metrics.session_index import SessionIndex
from harness.metrics.summary import METRICS, conformance, incident_block, merged_conformance, metric_stats, summarize, target_findings
from harness.metrics.turns import TurnMeter, meter_trace, turns_from_dir, turns_from_trace

__all__ = ["CAUSES", "COLUMNS", "LATENCY_COLUMNS", "METRICS", "STATUSES", "VAD_VERDICTS", "Incident", "SessionIndex",
           "Status", "TurnMeter", "VadVerdict", "classify_response", "conformance", "incident_block", "merged_conformance", "meter_trace",
           "metric_stats", "summarize", "target_findings", "turns_from_dir", "turns_from_trace"]
