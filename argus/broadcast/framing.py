"""Cutting a serialised run into pubsub messages the extension reassembles.

Every part reads ``*NONCE*INDEX*COUNT*DATA``. NONCE is shared by the parts of
one broadcast, INDEX counts from 0 and COUNT is the number of parts. The
extension joins DATA in index order once all COUNT parts of a nonce arrived.
"""

from __future__ import annotations

import re
import secrets

_PART_PATTERN = re.compile(r"\*(\d+)\*(\d+)\*(\d+)\*", re.DOTALL)


def new_nonce() -> int:
    """Return a random nonce below 2**32."""
    return secrets.randbelow(2**32)


def _header(nonce: int, index: int, count: int) -> bytes:
    return f"*{nonce}*{index}*{count}*".encode()


def _cut(data: bytes, nonce: int, count: int, max_bytes: int) -> list[bytes]:
    """Cut UTF-8 data into parts whose header, sized for ``count``, fits."""
    parts: list[bytes] = []
    position = 0
    while position < len(data) or not parts:
        budget = max_bytes - len(_header(nonce, len(parts), count))
        if budget < 4:
            raise ValueError(f"part size {max_bytes} leaves no room for data")
        end = min(position + budget, len(data))
        # Step back over UTF-8 continuation bytes (10xxxxxx), so that no
        # character is split between two parts.
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        parts.append(data[position:end])
        position = end
    return parts


def frame_message(data: str, max_bytes: int, nonce: int | None = None) -> list[str]:
    """Return the parts of one broadcast, each at most ``max_bytes`` UTF-8 bytes."""
    nonce = new_nonce() if nonce is None else nonce
    encoded = data.encode()
    # The header grows with the digits of COUNT, which can in turn need more
    # parts. The count only ever grows, so this settles within a few rounds.
    count = 1
    while True:
        chunks = _cut(encoded, nonce, count, max_bytes)
        if len(chunks) <= count:
            break
        count = len(chunks)
    count = len(chunks)
    return [
        (_header(nonce, index, count) + chunk).decode()
        for index, chunk in enumerate(chunks)
    ]


def join_parts(parts: list[str]) -> str:
    """Reassemble parts of one broadcast as the extension does; raise ValueError.

    The parts may come in any order but must share one nonce and be complete.
    """
    pieces: dict[int, str] = {}
    nonces: set[int] = set()
    counts: set[int] = set()
    for part in parts:
        match = _PART_PATTERN.match(part)
        if match is None:
            raise ValueError(f"not a framed part: {part[:40]!r}")
        nonce, index, count = (int(group) for group in match.groups())
        nonces.add(nonce)
        counts.add(count)
        pieces[index] = part[match.end() :]
    if len(nonces) != 1 or len(counts) != 1:
        raise ValueError(f"parts mix nonces {nonces} or counts {counts}")
    count = counts.pop()
    if sorted(pieces) != list(range(count)):
        raise ValueError(f"parts {sorted(pieces)} do not cover 0..{count - 1}")
    return "".join(pieces[index] for index in range(count))
