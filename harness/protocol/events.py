"""The `Event` value: a neutral kind plus the exact wire name and fields, and `make_event`.

An event keeps what came over the wire (`type`, `fields`) and what the catalogue says about it
(`kind`, the dialect its name belongs to, fields the catalogue does not list). Both `make_event`
and the codec build events through `classify`, so an encoded-then-decoded event equals itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.protocol.catalogue import CLIENT, CLIENT_NAMES, SERVER_NAMES, SPEC_BY_KIND, EventSpec, Kind
from harness.protocol.errors import LocalProtocolError
from harness.protocol.formats import Dialect
from harness.protocol.live_catalogue import LIVE_CLIENT_NAMES, LIVE_SERVER_NAMES, LiveEventSpec, live_spec


@dataclass
class Event:
    """One protocol event. `fields` is the JSON object minus `type`."""

    kind: Kind
    type: str
    fields: dict[str, Any] = field(default_factory=dict)
    # The dialect the wire name belongs to; None when both Realtime dialects use it (or it is
    # unknown); LIVE for every event classified as Live.
    name_dialect: Dialect | None = None
    # Fields present but not listed in the catalogue for this kind (sorted); kept in `fields`.
    extra_fields: tuple[str, ...] = ()

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    @property
    def spec(self) -> EventSpec | LiveEventSpec | None:
        if self.kind is Kind.UNKNOWN:
            return None
        if self.name_dialect is Dialect.LIVE:
            return live_spec(self.kind)
        return SPEC_BY_KIND.get(self.kind)

    @property
    def missing_fields(self) -> tuple[str, ...]:
        """Required fields (per the catalogue) that this event lacks."""
        spec = self.spec
        if spec is None:
            return ()
        return tuple(name for name in spec.required if name not in self.fields)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object on the wire (`type` first)."""
        return {"type": self.type, **self.fields}


def classify(type_: str, fields: dict[str, Any], side: str) -> Event:
    """Build the Event for a (Realtime) wire name sent by `side` ("client" or "server")."""
    names = CLIENT_NAMES if side == CLIENT else SERVER_NAMES
    found = names.get(type_)
    if found is None:
        return Event(Kind.UNKNOWN, type_, fields)
    spec, name_dialect = found
    known = spec.known_fields
    extra = tuple(sorted(name for name in fields if name not in known))
    return Event(spec.kind, type_, fields, name_dialect, extra)


def classify_live(type_: str, fields: dict[str, Any], side: str) -> Event:
    """Build the Event for a Live wire name sent by `side`; a name Live lacks is Kind.UNKNOWN."""
    found = (LIVE_CLIENT_NAMES if side == CLIENT else LIVE_SERVER_NAMES).get(type_)
    if found is None:
        return Event(Kind.UNKNOWN, type_, fields, Dialect.LIVE)
    known = found.known_fields
    extra = tuple(sorted(name for name in fields if name not in known))
    return Event(found.kind, type_, fields, Dialect.LIVE, extra)


def make_event(kind: Kind | str, dialect: Dialect | str, **fields: Any) -> Event:
    """An event of `kind` with the wire name `dialect` uses for it.

    Ids (`event_id`, `response_id`, ...) are never invented here: the caller passes them.
    Raises LocalProtocolError when the dialect has no such event (e.g. beta `item_done`).
    """
    kind = Kind(kind)
    dialect = Dialect(dialect)
    if dialect is Dialect.LIVE:
        live = live_spec(kind)
        if live is None:
            raise LocalProtocolError(f"make_event: the live dialect has no {kind.value!r} event")
        return classify_live(live.name, dict(fields), live.side)
    spec = SPEC_BY_KIND.get(kind)
    if spec is None:
        raise LocalProtocolError(f"make_event: {kind.value!r} is not a catalogued event kind")
    name = spec.wire_name(dialect)
    if name is None:
        raise LocalProtocolError(f"make_event: the {dialect.value} dialect has no {kind.value!r} event")
    return classify(name, dict(fields), spec.side)
