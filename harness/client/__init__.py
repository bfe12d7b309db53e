"""The caller: one WebSocket session driven on blocking stdlib primitives, paced by a process pacer.

Knows nothing of Locust: under Locust's gevent monkey-patching its threads are greenlets, under
`harness replay` and the tests they are threads. Modules: `spec` (SessionSpec, SessionResult),
`connection` / `sync_connection` (WebSocket over a socket), `clips` (pre-encoded appends),
`pacer` (one per process, absolute deadlines), `receiver` (receive loop), `playout` (player
model), `driver` (Session). Scenarios (harness.scenarios) are flows over `Session`.
"""

from harness.client.clips import noise_clip, silence_clip, utterance_clip, wire_clip
from harness.client.connection import ConnectFailed, ConnectionLost
from harness.client.driver import Session, SessionClosed, SessionStopped
from harness.client.pacer import AudioStream, Clip, LatenessHistogram, Pacer, get_pacer
from harness.client.playout import Player
from harness.client.spec import SessionResult, SessionSpec, SpecError

__all__ = [
    "AudioStream", "Clip", "ConnectFailed", "ConnectionLost", "LatenessHistogram", "Pacer", "Player",
    "Session", "SessionClosed", "SessionResult", "SessionSpec", "SessionStopped", "SpecError", "get_pacer",
    "noise_clip", "silence_clip", "utterance_clip", "wire_clip",
]
