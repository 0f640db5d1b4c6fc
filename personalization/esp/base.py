"""The adapter interface every ESP implements, and the shared plan/apply logic.

`Adapter.plan(export, previous_state)` says what would change (contacts to write, segment
memberships to add and remove, erasures) and maps the fields, so a dry run refuses what the
ESP would refuse; `Adapter.apply(plan)` sends it and returns one outcome per record.

A person is one contact at the ESP, written at most once per run with contact-level fields
computed once (the same values whatever segments they are in); segments are memberships
(lists, static segments). API adapters (`ApiAdapter`) implement a few primitives
(`field_rule`, `prepare`, `upsert`, `remove`, `erase`, `members`, `suppressions`);
batching, concurrency, the retries of rejected records and the per-batch log/state writes
live here once.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime

from personalization.config import Settings
from personalization.esp.batching import chunks
from personalization.esp.fields import FieldMap, build_field_map, segment_field
from personalization.esp.http import EspHttpClient, RetryPolicy
from personalization.esp.reader import ExportView
from personalization.esp.sync_log import RecordOutcome, SyncLog, fields_hash
from personalization.observability import log_event
from personalization.privacy.emails import email_sha256

logger = logging.getLogger(__name__)

MODES = ("delta", "mirror")
ERASURE_LIST = "*"  # list_name of erasure outcomes: they apply to the whole ESP account
CONTACT_LIST = "@contact"  # list_name of contact writes (fields), apart from memberships

# A failed record: (list_name, email), list_name CONTACT_LIST for the contact write itself.
Failures = dict[tuple[str, str], str]


@dataclass(frozen=True)
class ContactChange:
    """One person's write at the ESP: fields (if new or changed) and segments to join."""

    email: str
    fields: dict[str, str]  # export columns -> text: contact-level + segment-prefixed
    fields_hash: str
    action: str | None  # "add" (first write), "update" (fields changed), None (joins only)
    lists: tuple[str, ...] = ()  # segments to add the contact to

    def retry(self, failed: Failures) -> ContactChange | None:
        """What is left to send after `failed`: all of it, only some joins, or nothing."""
        if (CONTACT_LIST, self.email) in failed:
            return self
        lists = tuple(s for s in self.lists if (s, self.email) in failed)
        return ContactChange(self.email, self.fields, self.fields_hash, None, lists) if lists \
            else None


@dataclass
class SegmentPlan:
    """Membership changes of one ESP list/segment (named after the export segment)."""

    segment: str
    adds: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    unchanged: int = 0
    holdout: int = 0

    def counts(self) -> dict[str, int]:
        return {"adds": len(self.adds), "removes": len(self.removes),
                "unchanged": self.unchanged, "holdout_skipped": self.holdout}


@dataclass
class SyncPlan:
    """Everything one sync would send."""

    esp: str
    ds: date
    mode: str
    contacts: list[ContactChange]
    segments: list[SegmentPlan]
    erasures: list[str]
    fields: FieldMap | None = None
    dropped_columns: list[str] = field(default_factory=list)
    field_conflicts: int = 0  # persons whose contact-level values differed between segments

    def counts(self) -> dict[str, object]:
        total = {k: sum(s.counts()[k] for s in self.segments)
                 for k in ("adds", "removes", "unchanged", "holdout_skipped")}
        return {**total,
                "contact_adds": sum(c.action == "add" for c in self.contacts),
                "contact_updates": sum(c.action == "update" for c in self.contacts),
                "erasures": len(self.erasures),
                "segments": {s.segment: s.counts() for s in self.segments},
                "fields": dict(self.fields.targets) if self.fields else {},
                "dropped_columns": self.dropped_columns,
                "field_conflicts": self.field_conflicts}

    @property
    def records(self) -> int:
        """Records the sync log will hold an outcome for: contact writes, joins, leaves,
        erasures."""
        return (sum(c.action is not None for c in self.contacts)
                + sum(len(s.adds) + len(s.removes) for s in self.segments) + len(self.erasures))


@dataclass
class SyncState:
    """What earlier syncs left at the ESP: `{list: {email_sha256: fields_hash}}`, erasures.

    The list `CONTACT_LIST` holds the hash of each contact's fields as last written."""

    lists: dict[str, dict[str, str]]
    erased: set[str]


@dataclass(frozen=True)
class Suppression:
    """One address the ESP will not mail (read back for the lake, then hashed)."""

    email: str
    reason: str  # unsubscribe | bounce | spam_complaint | invalid_email | manual
    esp_reason: str  # the ESP's own word (`cleaned`, `HARD_BOUNCE`, `group:Newsletter`, ...)
    reported_at: datetime | None


class Adapter(ABC):
    """One family of ESP APIs."""

    name: str = ""
    # Whether `plan` reads each contact's fields (`SegmentExport.contacts`) and the sync
    # state; if not (the file drop copies files), the runner reads only the emails
    # (`read_export(contacts=False)`) and no state.
    reads_contacts: bool = True

    def __init__(self, settings: Settings, log: SyncLog, mode: str = "delta"):
        self.settings, self.log, self.mode = settings, log, mode

    @abstractmethod
    def plan(self, export: ExportView, previous_state: SyncState) -> SyncPlan:
        """What would change at the ESP; reads only, sends no change."""

    @abstractmethod
    def apply(self, plan: SyncPlan) -> list[RecordOutcome]:
        """Send the plan; one outcome per record, logged batch by batch."""

    def suppressions(self) -> Iterable[Suppression]:
        """Addresses this ESP will not mail (unsubscribed, bounced, complained...)."""
        return ()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class ApiAdapter(Adapter):
    """Shared plan/apply for HTTP APIs; subclasses implement the primitives."""

    upsert_batch_size = 500
    remove_batch_size = 500
    erase_batch_size = 100
    concurrency = 1  # parallel batches; bounded by the ESP's connection limit
    rate_limits: dict[str, float] = {}
    # What becomes of a segment's own columns: "prefix" -> `SEGMENT__COLUMN` contact fields,
    # "drop" -> not sent (an ESP with few, short field names).
    segment_fields = "prefix"

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
        self.fields: FieldMap | None = None

    def close(self) -> None:
        self.http.close()

    # --- primitives -------------------------------------------------------------------
    @abstractmethod
    def field_rule(self, column: str) -> str:
        """The ESP field an export column goes to (raises `FieldRuleError` if none)."""

    def field_check(self, name: str) -> None:  # noqa: B027 - optional hook
        """Validate an overridden field name (raises `FieldRuleError`)."""

    @staticmethod
    def field_fold(name: str) -> str:
        """How the ESP compares field names (exactly, unless a subclass says otherwise)."""
        return name

    def prepare(self, segments: list[str], fields: FieldMap) -> None:  # noqa: B027
        """Make sure lists/segments/fields exist before the first write (idempotently)."""

    @abstractmethod
    def upsert(self, changes: Sequence[ContactChange]) -> Failures:
        """Write contacts (if `action`) and add them to `lists`; returns what failed."""

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
        state = previous_state.lists
        written = state.get(CONTACT_LIST, {})
        persons: dict[str, dict[str, str]] = {}  # email -> merged fields
        joins: dict[str, list[str]] = {}  # email -> segments to join
        dropped: set[str] = set()
        conflicts: set[str] = set()
        segments = []
        for name, seg in sorted(export.segments.items()):
            in_segment = state.get(name, {})
            at_esp = self.members(name) if self.mode == "mirror" else None
            sp = SegmentPlan(name, holdout=len(seg.holdout_emails))
            exported: set[str] = set()
            for c in seg.contacts:
                if c.email in erasing or c.email in exported:
                    continue  # erasure wins; a duplicate row would be sent twice
                exported.add(c.email)
                contact_level = {k: v for k, v in c.fields.items() if k not in seg.own_columns}
                merged = persons.setdefault(c.email, dict(contact_level))
                if any(merged.get(k) != v for k, v in contact_level.items()):
                    conflicts.add(c.email)  # the first segment's values win, deterministically
                own = {k: v for k, v in c.fields.items() if k in seg.own_columns}
                if self.segment_fields == "prefix":
                    merged.update({segment_field(name, k): v for k, v in own.items()})
                else:
                    dropped.update(own)
                present = (c.email in at_esp) if at_esp is not None else \
                    email_sha256(c.email) in in_segment
                if present:
                    sp.unchanged += 1
                else:
                    sp.adds.append(c.email)
                    joins.setdefault(c.email, []).append(name)
            if at_esp is not None:
                gone = at_esp - exported
            else:
                # Delta mode touches only what the export says left (and any holdout member
                # an earlier sync sent), and only if we ever synced them.
                gone = {e for e in (seg.removed_emails | seg.holdout_emails) - exported
                        if email_sha256(e) in in_segment}
            sp.removes = sorted(gone - erasing)
            segments.append(sp)
        if conflicts:
            log_event(logger, "esp_field_conflicts", logging.WARNING, esp=self.name,
                      persons=len(conflicts))
        self.fields = build_field_map(
            self.name, {k for f in persons.values() for k in f}, self.field_rule,
            self.settings.esp_field_names.get(self.name), self.field_fold, self.field_check)
        changes = []
        for email in sorted(persons):
            fields = persons[email]
            digest = fields_hash(fields)
            known = written.get(email_sha256(email))
            action = "add" if known is None else ("update" if known != digest else None)
            lists = tuple(joins.get(email, ()))
            if action or lists:
                changes.append(ContactChange(email, fields, digest, action, lists))
        erasures = [e for e in export.erasures if email_sha256(e) not in previous_state.erased]
        return SyncPlan(self.name, export.ds, self.mode, changes, segments, erasures,
                        self.fields, sorted(dropped), len(conflicts))

    # --- apply ------------------------------------------------------------------------
    def apply(self, plan: SyncPlan) -> list[RecordOutcome]:
        assert plan.fields is not None, "apply needs a plan made by this adapter"
        self.fields = plan.fields
        self.prepare([s.segment for s in plan.segments], plan.fields)
        outcomes = self._run(list(chunks(plan.contacts, self.upsert_batch_size)),
                             self._upsert_batch)
        for sp in plan.segments:
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

    def _with_record_retries(self, items: list, send, keys_of, error_of, narrow) -> dict:
        """Send `items`; resend what the ESP rejected (only that), with backoff, for up to
        `esp_record_retries` more rounds. Returns `{key: error}` of what failed last time it
        was sent; a key that succeeded once and is not sent again stays a success."""
        final: dict = {}
        pending = items
        for round_ in range(self.settings.esp_record_retries + 1):
            failed = send(pending)
            for item in pending:
                for key in keys_of(item):
                    error = error_of(failed, key)
                    if error:
                        final[key] = error
                    else:
                        final.pop(key, None)
            pending = narrow(pending, failed)
            if not pending or round_ == self.settings.esp_record_retries:
                break
            log_event(logger, "esp_records_rejected", logging.WARNING, esp=self.name,
                      records=len(failed), retry_round=round_ + 1)
            time.sleep(self.http.backoff(round_ + 1))
        return final

    def _upsert_batch(self, batch: Sequence[ContactChange]) -> list[RecordOutcome]:
        def keys_of(c: ContactChange) -> list[tuple[str, str]]:
            return ([(CONTACT_LIST, c.email)] if c.action else []) + [(s, c.email)
                                                                      for s in c.lists]

        def error_of(failed: Failures, key: tuple[str, str]) -> str | None:
            # A contact the ESP refused cannot join anything either.
            return failed.get(key) or failed.get((CONTACT_LIST, key[1]))

        def narrow(pending, failed):
            return [r for r in (c.retry(failed) for c in pending) if r is not None]

        failed = self._with_record_retries(list(batch), self.upsert, keys_of, error_of, narrow)
        outcomes = []
        for c in batch:
            for key in keys_of(c):
                error = failed.get(key)
                action = c.action if key[0] == CONTACT_LIST else "add"
                outcomes.append(RecordOutcome(
                    key[0], c.email, action, "failed" if error else "ok", _scrub(error, c.email),
                    c.fields_hash if key[0] == CONTACT_LIST else None))
        return outcomes

    def _simple_batch(self, list_name: str, action: str, emails, fn) -> list[RecordOutcome]:
        failed = self._with_record_retries(
            list(emails), fn, lambda e: [e], lambda failed, e: failed.get(e),
            lambda pending, failed: [e for e in pending if e in failed])
        return [RecordOutcome(list_name, e, action, "failed" if e in failed else "ok",
                              _scrub(failed.get(e), e)) for e in emails]


def failed_change(c: ContactChange, error: str) -> Failures:
    """A rejected contact fails its write and every join it carried."""
    return {(CONTACT_LIST, c.email): error} | {(s, c.email): error for s in c.lists}


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 time from an ESP answer (`Z` accepted), None if absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _scrub(error: str | None, email: str) -> str | None:
    """ESP error texts often quote the address; the log keeps only its hash."""
    if error is None:
        return None
    return error.replace(email, "<email>")
