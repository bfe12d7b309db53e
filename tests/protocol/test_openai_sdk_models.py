"""The openai SDK's own pydantic models accept the server events our catalogue produces.

GA events are checked against `openai.types.realtime.RealtimeServerEvent`, beta events against
`openai.types.beta.realtime.RealtimeServerEvent` (the installed SDK still ships both).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest

from harness.protocol import Dialect, encode

from .sequences import SEQUENCES

openai_realtime = pytest.importorskip("openai.types.realtime")
pydantic = pytest.importorskip("pydantic")


def _adapter(dialect: Dialect) -> Any:
    if dialect is Dialect.GA:
        union = openai_realtime.RealtimeServerEvent
    else:
        beta = pytest.importorskip("openai.types.beta.realtime", reason="this openai SDK has no beta realtime types")
        union = beta.RealtimeServerEvent
    return pydantic.TypeAdapter(Annotated[union, pydantic.Discriminator("type")])


@pytest.mark.parametrize("name", sorted(SEQUENCES))
@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_the_sdk_models_accept_every_server_event_of_the_sequence(name: str, dialect: Dialect) -> None:
    adapter = _adapter(dialect)
    checked = 0
    for sent_by_client, event in SEQUENCES[name](dialect):
        if sent_by_client:
            continue
        parsed = adapter.validate_python(json.loads(encode(event)))
        assert parsed.type == event.type
        checked += 1
    assert checked > 5
