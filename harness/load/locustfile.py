"""The locustfile `harness run` hands to Locust; the repository's root locustfile.py is the same."""

from harness.load.users import RealtimeUser

__all__ = ["RealtimeUser"]
