"""Polling of asynchronous ESP jobs (SendGrid imports/exports, Klaviyo bulk imports)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from personalization.exceptions import SyncError


def poll(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], *,
         interval: float, timeout: float, what: str) -> dict[str, Any]:
    """Call `fetch` until `done(result)`, waiting `interval` (growing to 5x) between calls.

    Raises:
        SyncError: the job did not finish within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    wait = interval
    while True:
        result = fetch()
        if done(result):
            return result
        if time.monotonic() + wait > deadline:
            raise SyncError(f"{what} did not finish within {timeout:.0f} s")
        time.sleep(wait)
        wait = min(wait * 1.5, interval * 5) if interval else 0.0
