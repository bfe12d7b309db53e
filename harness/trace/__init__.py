"""Session traces: the single record of a session (schema in docs/contracts.md section 4)."""

from harness.trace.archive import compress_traces
from harness.trace.reader import (Trace, TraceFormatError, existing_trace, iter_trace_files, read_header, read_trace,
                                  trace_stem)
from harness.trace.recorder import SCHEMA_VERSION, TraceRecorder, flush_all
from harness.trace.scrub import audio_summary, redact_url, scrub_event

__all__ = [
    "SCHEMA_VERSION", "Trace", "TraceFormatError", "TraceRecorder", "audio_summary", "compress_traces",
    "existing_trace", "flush_all", "iter_trace_files", "read_header", "read_trace", "redact_url", "scrub_event",
    "trace_stem",
]
