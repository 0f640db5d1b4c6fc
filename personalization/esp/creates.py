"""Lists, segments and fields created at most once, whatever the network does.

A create is not idempotent: when its answer is lost (reset, timeout, 5xx after applying)
a blind retry makes a second list of the same name at ESPs that allow that. So a create is
sent without automatic retries, and after any failure, including "already exists", the
names are read again before the create is tried again. Names found twice at the ESP (left by
an older sync) resolve to the one the ESP lists first, with a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from personalization.esp.http import EspHttpClient, TransientHttpError
from personalization.exceptions import SyncError
from personalization.observability import log_event

logger = logging.getLogger(__name__)


class NamedResources:
    """One kind of named thing at one ESP (lists, static segments, merge fields...)."""

    def __init__(self, esp: str, kind: str, http: EspHttpClient, *,
                 fetch: Callable[[], list[tuple[str, str]]],
                 create: Callable[[str], str | None]):
        """
        Args:
            esp, kind: for messages (`sendgrid`, `list`).
            http: the adapter's client (its retry policy and backoff).
            fetch: every `(name, id)` at the ESP, in the ESP's order (lookups retry).
            create: sends one create without retries (`retries=0`); returns the new id,
                or None when the ESP answers that the name already exists.
        """
        self.esp, self.kind, self.http = esp, kind, http
        self._fetch, self._create = fetch, create
        self._ids: dict[str, str] | None = None
        self._lock = threading.Lock()
        self.creates = 0  # creates that reached the ESP and were answered

    def ids(self) -> dict[str, str]:
        """`{name: id}` as last read (read on first use)."""
        with self._lock:
            if self._ids is None:
                self._refresh()
            return dict(self._ids or {})

    def get(self, name: str) -> str | None:
        return self.ids().get(name)

    def _refresh(self) -> None:
        found: dict[str, str] = {}
        for name, ident in self._fetch():
            if name in found:
                log_event(logger, "esp_duplicate_name", logging.WARNING, esp=self.esp,
                          kind=self.kind, name=name, kept=found[name], ignored=ident)
                continue
            found[name] = ident
        self._ids = found

    def ensure(self, name: str) -> str:
        """The id of `name`, creating it if (and only if) the ESP does not have it.

        Raises:
            SyncError: the ESP refused the name, or still failed after the last attempt.
        """
        with self._lock:
            if self._ids is None:
                self._refresh()
            assert self._ids is not None
            if name in self._ids:
                return self._ids[name]
            attempts = self.http.policy.max_retries + 1
            last: str = "not found after the ESP said it exists"
            for attempt in range(1, attempts + 1):
                asked = None
                try:
                    new_id = self._create(name)
                except TransientHttpError as e:
                    last, asked = str(e), e.retry_after  # maybe applied: look, then retry
                else:
                    self.creates += 1
                    if new_id is not None:
                        self._ids[name] = new_id
                        return new_id
                self._refresh()
                if name in self._ids:
                    return self._ids[name]
                if attempt < attempts:
                    wait = self.http.backoff(attempt)
                    time.sleep(min(max(wait, asked or 0.0), self.http.policy.backoff_max))
            raise SyncError(f"{self.esp}: could not create {self.kind} {name!r} after "
                            f"{attempts} attempts ({last})")
