"""Requests that fit an ESP's documented limits: records per request and bytes per body.

Bodies are built from each record's JSON text, so the size counted is the size sent. Limits
are decimal, as the ESPs document them (Klaviyo's 5 MB = 5,000,000 bytes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

MB = 1_000_000
_ROWS = "\x00rows\x00"  # marks where the records go in an envelope
_SEPARATOR = ", "  # json.dumps' item separator, so body == json.dumps(whole payload)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class JsonEnvelope:
    """A JSON request body with one list of records, e.g. `{"list_ids": [..], "contacts": ROWS}`.

    Put `JsonEnvelope.ROWS` where the records go; `body(rows)` then gives exactly
    `json.dumps` of the payload with those records, and `size(rows)` its bytes.
    """

    ROWS = [_ROWS]

    def __init__(self, payload: Any):
        text = json.dumps(payload)
        self.head, _, self.tail = text.partition(json.dumps(_ROWS))
        self.head = self.head.removesuffix("[")
        self.tail = self.tail.removeprefix("]")

    def fixed_bytes(self) -> int:
        return len(self.head) + len(self.tail) + 2  # the brackets

    def body(self, rows: Sequence[str]) -> str:
        return f"{self.head}[{_SEPARATOR.join(rows)}]{self.tail}"


def pack(rows: Sequence[str], envelope: JsonEnvelope, *, max_records: int,
         max_bytes: int) -> tuple[list[range], list[int]]:
    """Split `rows` (JSON texts, ASCII) into consecutive groups that each fit one request.

    Returns:
        (groups as index ranges, indexes of rows too big for any request on their own)
    """
    fixed = envelope.fixed_bytes()
    groups: list[range] = []
    too_big: list[int] = []
    start, size = 0, fixed
    for i, row in enumerate(rows):
        if fixed + len(row) > max_bytes:
            if start < i:
                groups.append(range(start, i))
            too_big.append(i)
            start, size = i + 1, fixed
            continue
        extra = len(row) + (len(_SEPARATOR) if i > start else 0)
        if i - start >= max_records or size + extra > max_bytes:
            groups.append(range(start, i))
            start, size, extra = i, fixed, len(row)
        size += extra
    if start < len(rows):
        groups.append(range(start, len(rows)))
    return groups, too_big
