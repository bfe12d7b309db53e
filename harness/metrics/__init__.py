"""Metrics and incidents as pure functions of session traces (no network, no pandas)."""

from harness.metrics.incidents import CAUSES, Incident, classify_response
from harness.metrics.session_index import SessionIndex, index_session
from harness.metrics.summary import METRICS, conformance, incident_block, metric_stats, summarize
from harness.metrics.turns import turns_from_dir, turns_from_trace

__all__ = ["CAUSES", "METRICS", "Incident", "SessionIndex", "classify_response", "conformance",
           "incident_block", "index_session", "metric_stats", "summarize", "turns_from_dir", "turns_from_trace"]
