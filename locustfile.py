"""Plain Locust entry point for the harness.

    locust -f locustfile.py --headless -u 50 -r 10 -t 2m --target ws://127.0.0.1:8765/v1/realtime \
        --scenario plain:3,barge_in:1 --format g711_ulaw --slo 'ttfa_ms:p95<1200'

`harness --help` and `locust -f locustfile.py --help` list the harness options; the run
directory (reports/<RUN_ID>/ unless --out) gets the turn tables, summary, JUnit file and report.
"""

from harness.load.users import RealtimeUser

__all__ = ["RealtimeUser"]
