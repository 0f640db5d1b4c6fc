"""The adapter interface every ESP implements, and the shared plan/apply logic.

`Adapter.plan(export, previous_state)` says what would change (adds, updates, removes per
segment, erasures); `Adapter.apply(plan)` sends it and returns one outcome per record.
API adapters (`ApiAdapter`) only implement four primitives (`prepare`, `upsert`, `remove`,
`erase`, plus `members` for mirror mode); batching, concurrency, the one retry of rejected
records, and the per-batch log/state writes live here once.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from personalization.config import Settings
from personalization.esp.http import EspHttpClient, RetryPolicy
from personalization.esp.reader import Contact, ExportView
from personalization.esp.sync_log import RecordOutcome, SyncLog, email_sha256
from personalization.observability import log_event

logger = logging.getLogger(__name__)

MODES = ("delta", "mirror")
ERASURE_LIST = "*"  # list_name of erasure outcomes: they apply to the whole ESP account

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@dataclass
class SegmentPlan:
    """Changes to one ESP list/segment/tag (named after the export segment)."""

    segment: str
    adds: list[Contact] = field(default_factory=list)
    updates: list[Contact] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    unchanged: int = 0
    holdout: int = 0

    def counts(self) -> dict[str, int]:
        return {"adds": len(self.adds), "updates": len(self.updates),
                "removes": len(self.removes), "unchanged": self.unchanged,
                "holdout_skipped": self.holdout}


@dataclass
class SyncPlan:
    """Everything one sync would send."""

    esp: str
    ds: date
    mode: str
    segments: list[SegmentPlan]
    erasures: list[str]

    def counts(self) -> dict[str, object]:
        total = {k: sum(s.counts()[k] for s in self.segments)
                 for k in ("adds", "updates", "removes", "unchanged", "holdout_skipped")}
        return {**total, "erasures": len(self.erasures),
                "segments": {s.segment: s.counts() for s in self.segments}}

    @property
    def records(self) -> int:
        return sum(len(s.adds) + len(s.updates) + len(s.removes) for s in self.segments) + len(
            self.erasures)


@dataclass
class SyncState:
    """What earlier syncs left at the ESP: `{list: {email_sha256: fields_hash}}`, erasures."""

    lists: dict[str, dict[str, str]]
    erased: set[str]


class Adapter(ABC):
    """One family of ESP APIs."""

    name: str = ""

    def __init__(self, settings: Settings, log: SyncLog, mode: str = "delta"):
        self.settings, self.log, self.mode = settings, log, mode

    @abstractmethod
    def plan(self, export: ExportView, previous_state: SyncState) -> SyncPlan:
        """What would change at the ESP; reads only, sends no change."""

    @abstractmethod
    def apply(self, plan: SyncPlan) -> list[RecordOutcome]:
        """Send the plan; one outcome per record, logged batch by batch."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class ApiAdapter(Adapter):
    """Shared plan/apply for HTTP APIs; subclasses implement the primitives."""

    upsert_batch_size = 500
    remove_batch_size = 500
    erase_batch_size = 100
    concurrency = 1  # parallel batches; bounded by the ESP's connection limit
    rate_limits: dict[str, float] = {}

    def __init__(self, settings: Settings, log: SyncLog, mode: str = "delta", *,
                 base_url: str, headers: dict[str, str] | None = None,
                 auth: tuple[str, str] | None = None, policy: RetryPolicy | None = None):
        super().__init__(settings, log, mode)
        self.policy = policy or RetryPolicy(
            max_retries=settings.esp_max_retries,
            backoff_base=settings.esp_backoff_base_seconds,
            backoff_max=settings.esp_backoff_max_seconds,
            timeout=settings.esp_timeout_seconds,
            seed=settings.esp_retry_seed,
        )
        self.http = EspHttpClient(base_url, headers=headers, auth=auth, policy=self.policy,
                                  on_call=log.on_call, max_connections=max(self.concurrency, 1),
                                  rate_limits=self.rate_limits)

    def close(self) -> None:
        self.http.close()

    # --- primitives -------------------------------------------------------------------
    def prepare(self, segments: list[str]) -> None:  # noqa: B027 - optional hook
        """Make sure lists/segments/fields exist before the first write."""

    @abstractmethod
    def upsert(self, segment: str, contacts: Sequence[Contact]) -> dict[str, str]:
        """Create or update contacts and put them in `segment`; returns {email: error}."""

    @abstractmethod
    def remove(self, segment: str, emails: Sequence[str]) -> dict[str, str]:
        """Take emails out of `segment` (the person stays at the ESP); {email: error}."""

    @abstractmethod
    def erase(self, emails: Sequence[str]) -> dict[str, str]:
        """Delete the persons at the ESP for good (right to erasure); {email: error}."""

    def members(self, segment: str) -> set[str]:
        """Emails currently in `segment` at the ESP (mirror mode)."""
        raise NotImplementedError(f"{self.name} cannot list members")

    # --- plan -------------------------------------------------------------------------
    def plan(self, export: ExportView, previous_state: SyncState) -> SyncPlan:
        erasing = set(export.erasures)
        plans = []
        for name, seg in sorted(export.segments.items()):
            state = previous_state.lists.get(name, {})
            at_esp = self.members(name) if self.mode == "mirror" else None
            sp = SegmentPlan(name, holdout=len(seg.holdout_emails))
            exported = set()
            for c in seg.contacts:
                if c.email in erasing or c.email in exported:
                    continue  # erasure wins; duplicates would be sent twice
                exported.add(c.email)
                sha = email_sha256(c.email)
                present = (c.email in at_esp) if at_esp is not None else sha in state
                if not present:
                    sp.adds.append(c)
                elif state.get(sha) != c.fields_hash:
                    sp.updates.append(c)
                else:
                    sp.unchanged += 1
            if at_esp is not None:
                gone = at_esp - exported
            else:
                # Delta mode touches only what the export says left (and any holdout member
                # an earlier sync sent), and only if we ever synced them.
                gone = {e for e in (seg.removed_emails | seg.holdout_emails) - exported
                        if email_sha256(e) in state}
            sp.removes = sorted(gone - erasing)
            plans.append(sp)
        erasures = [e for e in export.erasures if email_sha256(e) not in previous_state.erased]
        return SyncPlan(self.name, export.ds, self.mode, plans, erasures)

    # --- apply ------------------------------------------------------------------------
    def apply(self, plan: SyncPlan) -> list[RecordOutcome]:
        self.prepare([s.segment for s in plan.segments])
        outcomes: list[RecordOutcome] = []
        for sp in plan.segments:
            items = [(c, "add") for c in sp.adds] + [(c, "update") for c in sp.updates]
            outcomes += self._run(list(chunks(items, self.upsert_batch_size)),
                                  lambda batch, s=sp.segment: self._upsert_batch(s, batch))
            outcomes += self._run(list(chunks(sp.removes, self.remove_batch_size)),
                                  lambda batch, s=sp.segment: self._simple_batch(
                                      s, "remove", batch, lambda b: self.remove(s, b)))
        outcomes += self._run(list(chunks(plan.erasures, self.erase_batch_size)),
                              lambda batch: self._simple_batch(ERASURE_LIST, "delete", batch,
                                                               self.erase))
        return outcomes

    def _run(self, batches, fn) -> list[RecordOutcome]:
        """Run batches (in parallel up to `concurrency`), logging each as it completes."""
        out: list[RecordOutcome] = []
        if not batches:
            return out
        error: Exception | None = None
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for future in [pool.submit(fn, b) for b in batches]:
                try:
                    result = future.result()
                except Exception as e:  # noqa: BLE001 - re-raised below, after the others
                    error = error or e
                    continue
                # One transaction per batch, including batches that finish after another
                # failed: a rerun then resends only what was really not applied.
                self.log.record(result)
                out += result
        if error is not None:
            raise error
        return out

    def _upsert_batch(self, segment: str, batch) -> list[RecordOutcome]:
        contacts = [c for c, _ in batch]
        failed = self.upsert(segment, contacts)
        if failed:
            # Rejected records get one more try in a batch of their own (a transient
            # rejection heals); what fails again is recorded as failed, never dropped.
            log_event(logger, "esp_records_rejected", logging.WARNING, esp=self.name,
                      segment=segment, records=len(failed), retrying=True)
            failed = self.upsert(segment, [c for c in contacts if c.email in failed])
        return [RecordOutcome(segment, c.email, action,
                              "failed" if c.email in failed else "ok",
                              _scrub(failed.get(c.email), c.email), c.fields_hash)
                for c, action in batch]

    def _simple_batch(self, list_name: str, action: str, emails, fn) -> list[RecordOutcome]:
        failed = fn(emails)
        if failed:
            failed = fn([e for e in emails if e in failed])
        return [RecordOutcome(list_name, e, action, "failed" if e in failed else "ok",
                              _scrub(failed.get(e), e)) for e in emails]


def _scrub(error: str | None, email: str) -> str | None:
    """ESP error texts often quote the address; the log keeps only its hash."""
    if error is None:
        return None
    return error.replace(email, "<email>")
