"""Read a WebSocket byte stream one frame at a time, so that each frame gets its own arrival stamp.

With kernel receive timestamps (SO_TIMESTAMPNS), a read is stamped with the arrival of the last
packet it consumed. A receive loop that runs late (behind other sessions' work) finds several
frames waiting, and one read of all of them would give the earliest frame the latest frame's
arrival. `FrameCutter` tracks the frame boundaries of the server's stream (RFC 6455 section
5.2: a 2-byte header, 2 or 8 bytes of extended length, a 4-byte mask key when masked, then the
payload) and says how many bytes the next read may take so that it ends at the end of a frame.
The connection peeks at what is waiting, asks the cutter for the sizes of the whole frames in it,
and reads each of them separately. It is pure: fed bytes, it answers sizes.
"""

from __future__ import annotations


def frame_length(data: bytes | bytearray | memoryview, offset: int = 0) -> int | None:
    """Total length (header + payload) of the frame starting at `offset`; None if its header
    is not all there yet."""
    available = len(data) - offset
    if available < 2:
        return None
    second = data[offset + 1]
    length = second & 0x7F
    header = 2
    if length == 126:
        header = 4
        if available < header:
            return None
        length = int.from_bytes(data[offset + 2:offset + 4], "big")
    elif length == 127:
        header = 10
        if available < header:
            return None
        length = int.from_bytes(data[offset + 2:offset + 10], "big")
    if second & 0x80:
        header += 4
    return header + length


class FrameCutter:
    """Where the frames of one stream end, for reads that stop at frame boundaries."""

    def __init__(self) -> None:
        self.head = bytearray()    # bytes of the current frame already read (its header part)
        self.remaining = 0         # bytes of the current frame still to read, once its size is known

    def next_reads(self, peeked: bytes, limit: int) -> list[int]:
        """Sizes of the reads to make now, given the bytes waiting (`peeked`, not yet read).

        Each read ends at a frame's end, except when a frame is longer than what is waiting or
        than `limit` (then one read takes what can be taken) or its header is incomplete (the
        partial header is read and remembered). Never returns an empty list for non-empty input.
        """
        if not peeked:
            return []
        if self.remaining:
            return [min(self.remaining, len(peeked), limit)]
        sizes: list[int] = []
        position = 0
        buffer = bytes(self.head) + peeked if self.head else peeked
        skip = len(self.head)      # bytes of `buffer` already read
        while position < len(buffer):
            total = frame_length(buffer, position)
            if total is None or position + total > len(buffer):
                break
            size = total - (skip if position == 0 else 0)
            if sum(sizes) + size > limit:
                break
            sizes.append(size)
            position += total
        if not sizes:              # the first frame is not all here: read what is
            return [min(len(peeked), limit)]
        return sizes

    def consumed(self, data: bytes) -> None:
        """Account bytes actually read (in order)."""
        view = memoryview(data)
        while view:
            if self.remaining:
                step = min(self.remaining, len(view))
                self.remaining -= step
                view = view[step:]
                continue
            self.head += view
            view = view[len(view):]
            total = frame_length(self.head)
            if total is None:
                return
            if len(self.head) >= total:
                extra = bytes(self.head[total:])
                self.head.clear()
                if extra:
                    view = memoryview(extra)
            else:
                self.remaining = total - len(self.head)
                self.head.clear()
