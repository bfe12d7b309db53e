"""docs/contracts.md names exactly the marks, turn-record columns, statuses and verdicts the code defines."""

from __future__ import annotations

import re
from pathlib import Path

from harness.metrics import COLUMNS, STATUSES, VAD_VERDICTS
from harness.trace.vocabulary import MARK_NAMES, Mark

CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"


def _section(number: int) -> str:
    text = CONTRACTS.read_text(encoding="utf-8")
    start = text.index(f"## {number}.")
    return text[start:text.index(f"## {number + 1}.", start)]


def _backticked_after(section: str, label: str) -> list[str]:
    block = section[section.index(label) + len(label):]
    return block[block.index("`") + 1:block.index("`", block.index("`") + 1)].split()


def test_the_contracts_mark_table_lists_exactly_the_marks_of_the_vocabulary() -> None:
    marks = _section(4).split("Marks (", 1)[1]
    rows = re.findall(r"^\| `([a-z_]+)` \|", marks, flags=re.MULTILINE)
    assert sorted(rows) == sorted(MARK_NAMES)
    assert len(rows) == len(set(rows))


def test_the_contracts_turn_record_columns_are_the_columns_the_meter_builds() -> None:
    assert _backticked_after(_section(5), "Columns") == list(COLUMNS)


def test_the_contracts_statuses_and_verdicts_are_the_vocabulary_s() -> None:
    section = _section(5)
    assert _backticked_after(section, "Statuses:") == list(STATUSES)
    assert _backticked_after(section, "VAD verdicts:") == list(VAD_VERDICTS)


def test_a_mark_is_the_plain_string_it_names() -> None:
    assert Mark.TURN_START == "turn_start" and str(Mark.TURN_END) == "turn_end"
