"""A load-testing and diagnostics harness for OpenAI-Realtime-style voice pipelines."""

__version__ = "0.1.0"
