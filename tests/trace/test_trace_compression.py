"""Compressed traces: `traces/*.jsonl.gz` read like the plain ones, mixed with them in one folder,
and a compression cut short (a torn gzip stream, a leftover `.part`) never loses a trace."""

from __future__ import annotations

import gzip
from pathlib import Path

from harness.trace import TraceRecorder, compress_traces, existing_trace, iter_trace_files, read_header, read_trace
from harness.trace.reader import trace_stem


def _trace(path: Path, session: str, marks: int, close: bool = True) -> Path:
    recorder = TraceRecorder(path, {"run_id": "r", "session_id": session})
    for turn in range(marks):
        recorder.mark("turn_start", 1000 + turn, turn=turn)
    if close:
        recorder.close("done")
    else:
        recorder.flush()
    return path


def test_a_folder_of_plain_and_compressed_traces_reads_as_the_plain_one_did(tmp_path: Path) -> None:
    folder = tmp_path / "traces"
    folder.mkdir()
    for index in range(4):
        _trace(folder / f"w0-s{index}.jsonl", f"s{index}", marks=index + 1)
    before = {trace_stem(p): read_trace(p) for p in iter_trace_files(folder)}
    for index in (1, 3):   # half of them compressed
        path = folder / f"w0-s{index}.jsonl"
        (folder / f"w0-s{index}.jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    paths = list(iter_trace_files(folder))
    assert [p.name for p in paths] == ["w0-s0.jsonl", "w0-s1.jsonl.gz", "w0-s2.jsonl", "w0-s3.jsonl.gz"]
    for path in paths:
        trace, plain = read_trace(path), before[trace_stem(path)]
        assert (trace.header, trace.records, trace.footer) == (plain.header, plain.records, plain.footer)
        assert trace.complete and read_header(path) == plain.header
    assert existing_trace(folder / "w0-s1.jsonl") == folder / "w0-s1.jsonl.gz"
    assert existing_trace(folder / "w0-s0.jsonl") == folder / "w0-s0.jsonl"
    assert existing_trace(folder / "w0-s9.jsonl") is None


def test_compressing_a_run_keeps_every_byte_and_a_torn_trace_stays_torn(tmp_path: Path) -> None:
    folder = tmp_path / "traces"
    folder.mkdir()
    whole = _trace(folder / "w0-a.jsonl", "a", marks=50)
    torn = _trace(folder / "w0-b.jsonl", "b", marks=3, close=False)
    with torn.open("a") as file:
        file.write('{"rec":"mark","t_ns":9,"ma')   # the process was killed mid-line
    originals = {p.name: p.read_bytes() for p in (whole, torn)}
    done = compress_traces(folder)
    assert done.files == 2 and done.bytes_after < done.bytes_before
    assert sorted(p.name for p in folder.iterdir()) == ["w0-a.jsonl.gz", "w0-b.jsonl.gz"]
    for name, data in originals.items():
        assert gzip.decompress((folder / f"{name}.gz").read_bytes()) == data
    trace = read_trace(folder / "w0-b.jsonl.gz")
    assert trace.torn_tail and not trace.complete and len(trace.records) == 3
    assert read_trace(folder / "w0-a.jsonl.gz").complete


def test_a_compression_cut_short_leaves_every_trace_readable_once(tmp_path: Path) -> None:
    folder = tmp_path / "traces"
    folder.mkdir()
    plain = _trace(folder / "w0-a.jsonl", "a", marks=40)
    packed = gzip.compress(plain.read_bytes())
    (folder / "w0-a.jsonl.gz").write_bytes(packed)           # written, plain not yet removed
    (folder / "w0-b.jsonl.gz.part").write_bytes(packed[:20])  # killed while writing the next one
    _trace(folder / "w0-b.jsonl", "b", marks=2)
    assert [p.name for p in iter_trace_files(folder)] == ["w0-a.jsonl", "w0-b.jsonl"]
    cut = folder / "w0-c.jsonl.gz"                            # a compressed trace cut short (a copy torn)
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    trace = read_trace(cut)
    assert trace.torn_tail and trace.footer is None and 0 < len(trace.records) < 40
    assert read_header(cut) == read_trace(plain).header
    compress_traces(folder)   # the next assembly finishes the job
    assert sorted(p.name for p in folder.iterdir()) == ["w0-a.jsonl.gz", "w0-b.jsonl.gz", "w0-c.jsonl.gz"]
    assert read_trace(folder / "w0-a.jsonl.gz").complete
