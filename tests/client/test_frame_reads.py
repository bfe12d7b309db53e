"""Reads cut at frame boundaries: whatever the waiting bytes, every read ends where a frame ends
(or takes a frame too long to wait for), and the cutter's account of the stream stays right."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from harness.client.frame_reads import FrameCutter, frame_length


def _frame(payload_len: int, masked: bool = False) -> bytes:
    if payload_len < 126:
        header = bytes((0x81, payload_len | (0x80 if masked else 0)))
    elif payload_len < 65536:
        header = bytes((0x81, 126 | (0x80 if masked else 0))) + payload_len.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127 | (0x80 if masked else 0))) + payload_len.to_bytes(8, "big")
    return header + (b"MASK" if masked else b"") + b"x" * payload_len


def test_a_frame_s_length_counts_its_header_extended_length_and_mask() -> None:
    assert frame_length(_frame(5)) == 7
    assert frame_length(_frame(300)) == 304
    assert frame_length(_frame(70000)) == 70010
    assert frame_length(_frame(5, masked=True)) == 11
    assert frame_length(_frame(300)[:3]) is None


def test_three_waiting_frames_are_read_in_three_reads() -> None:
    cutter = FrameCutter()
    stream = _frame(10) + _frame(200) + _frame(3)
    assert cutter.next_reads(stream, 65536) == [12, 204, 5]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=70000), min_size=1, max_size=6),
       st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=40))
def test_reads_end_at_frame_ends_whatever_arrives_when(payloads: list[int], arrivals: list[int]) -> None:
    frames = [_frame(n) for n in payloads]
    stream = b"".join(frames)
    ends = set()
    position = 0
    for frame in frames:
        position += len(frame)
        ends.add(position)
    cutter, read, arrived, limit = FrameCutter(), 0, 0, 65536
    for step in [*arrivals * 200, len(stream)]:    # bounded: at most 8001 rounds, the last brings the rest
        if read >= len(stream):
            break
        arrived = min(len(stream), arrived + step)
        for _ in range(100):               # the connection reads again while bytes are waiting
            if read >= arrived:
                break
            for size in cutter.next_reads(stream[read:arrived], limit):
                start, stop = read, read + size
                assert 0 < size and stop <= arrived
                frame_end = min(e for e in ends if e > start)
                if frame_end <= arrived and frame_end - start <= limit:
                    assert stop == frame_end       # the whole frame was waiting: the read ends with it
                else:
                    assert stop == min(arrived, start + limit)   # not all there: take what is waiting
                cutter.consumed(stream[start:stop])
                read = stop
    assert read == len(stream)
    assert cutter.remaining == 0 and not cutter.head
