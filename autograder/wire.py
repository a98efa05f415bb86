"""The one framing every process boundary of the grader speaks: a 4-byte big-endian length,
then that many bytes (JSON, or a file's raw bytes).

Grader <-> sandboxed worker, and grader <-> reading helper. Standard library only: it is
mounted into the box beside `worker.py`.
"""
import os
import select
import struct
import time

HEADER = struct.Struct(">I")


class FrameTimeout(TimeoutError):
    """The other side did not finish a frame before the deadline."""


def read_exactly(fd, view):
    """Fill the memoryview `view` from `fd`; False at end of input."""
    got = 0
    while got < len(view):
        n = os.readv(fd, [view[got:]])
        if n == 0:
            return False
        got += n
    return True


def read_frame_into(fd, buffer):
    """Read one frame into the preallocated `buffer` (so it can be wiped after use); its
    length, or None at end of input. A frame longer than the buffer raises ValueError."""
    size = bytearray(HEADER.size)
    if not read_exactly(fd, memoryview(size)):
        return None
    (length,) = HEADER.unpack(size)
    if length > len(buffer):
        raise ValueError(f"frame of {length} bytes exceeds {len(buffer)}")
    return length if read_exactly(fd, memoryview(buffer)[:length]) else None


def read_frame(fd, *, limit, deadline=None):
    """Read one frame of at most `limit` bytes from `fd`; None at end of input.

    With a `deadline` (time.monotonic()), raise `FrameTimeout` if it has not all arrived
    by then; a frame over `limit` raises ValueError before any of it is read.
    """
    size = _read(fd, HEADER.size, deadline)
    if size is None:
        return None
    (length,) = HEADER.unpack(size)
    if length > limit:
        raise ValueError(f"frame of {length} bytes exceeds {limit}")
    return _read(fd, length, deadline)


def _read(fd, count, deadline):
    parts, got = [], 0
    while got < count:
        if deadline is not None:
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise FrameTimeout(f"no answer within the time allowed ({got} of {count} bytes)")
        chunk = os.read(fd, min(count - got, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def write_frame(fd, data):
    """Write one frame (`data`: bytes-like) from where it lies, leaving no copy behind."""
    for part in (HEADER.pack(len(data)), data):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view):]
