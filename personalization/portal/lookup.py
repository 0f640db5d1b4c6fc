"""Contact lookup: one person's segments, past segments and exclusions, found by email.

The email is matched exactly (trimmed, lower case, as the export writes it) and is only
ever held in memory: the form is POSTed (never in a URL), nothing here logs it, and pages
show it masked. Segment files are read for the email column; the exclusion records
(`export.exclusions`) hold only email hashes, so the typed email is hashed to match them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import duckdb

from personalization.config import Settings
from personalization.export.exclusions import audit_path
from personalization.observability import log_event
from personalization.portal import store
from personalization.portal.security import mask_email

logger = logging.getLogger(__name__)

# How far back the lookup reads exports (one file per segment and day).
MAX_EXPORTS = 90
REASONS = {
    "not_opted_in": "no consent: never opted in to email",
    "unsubscribed": "unsubscribed",
    "suppressed": "suppressed at the ESP",
    "erased": "erased (right to erasure)",
    "erasure_request": "asked to be erased",
    "invalid_email": "invalid email address",
    "not_contactable": "not contactable",
    "duplicate_email": "another contact has the same email: only one is exported",
    "no_profile": "no customer profile",
    "holdout": "holdout: in the control group, kept in the full file but never mailed",
}
SUPPRESSION_DETAILS = {"unsubscribe": "unsubscribed at the ESP", "bounce": "bounced at the ESP",
                       "complaint": "complained (marked as spam) at the ESP"}


@dataclass
class Membership:
    """A spell of the person in one segment (dates are export dates)."""

    segment: str
    since: str
    last_seen: str
    left_on: str | None = None
    is_holdout: bool = False
    variant: str | None = None


@dataclass
class Exclusion:
    segment: str
    reason: str
    text: str


@dataclass
class LookupResult:
    masked_email: str
    latest_ds: str | None
    exports_searched: int
    current: list[Membership] = field(default_factory=list)
    left: list[Membership] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    has_exclusion_record: bool = True

    @property
    def found(self) -> bool:
        return bool(self.current or self.left or self.excluded)


def normalise(email: str) -> str:
    """How the export writes emails: trimmed, lower case."""
    return email.strip().lower()


def _presence(exports: list[store.Export], email: str) -> dict[tuple[str, str], tuple[bool, str | None]]:
    """{(ds, segment): (is_holdout, variant)} for every export file that holds `email`."""
    files = {}
    for export in exports:
        for seg in export.segments:
            path = store.segment_file(export, str(seg.get("name")))
            if path is not None:
                files[str(path)] = (export.ds, str(seg.get("name")))
    if not files:
        return {}
    con = duckdb.connect()  # in memory: never the warehouse file
    try:
        rows = con.execute(
            "SELECT filename, bool_or(coalesce(CAST(is_holdout AS BOOLEAN), true)),"
            " any_value(CAST(variant AS VARCHAR))"
            " FROM read_parquet(?, union_by_name = true, filename = true)"
            " WHERE email = ? GROUP BY filename", [list(files), email]).fetchall()
    finally:
        con.close()
    return {files[f]: (bool(h), v) for f, h, v in rows if f in files}


def _spells(exports: list[store.Export], present: dict) -> tuple[list[Membership], list[Membership]]:
    """Current memberships (in the latest export) and segments left, from presence by date."""
    oldest_first = list(reversed(exports))
    latest = exports[0]
    current, left = [], []
    names = sorted({seg for _, seg in present})
    for name in names:
        dates = [e.ds for e in oldest_first if e.segment(name) is not None]
        seen = [d for d in dates if (d, name) in present]
        last = seen[-1]
        if (latest.ds, name) in present:
            since = last
            for d in reversed(dates):  # back to the start of the unbroken run
                if (d, name) not in present:
                    break
                since = d
            holdout, variant = present[(latest.ds, name)]
            current.append(Membership(name, since, last, None, holdout, variant))
        else:
            after = [d for d in dates if d > last]
            left.append(Membership(name, seen[0], last, after[0] if after else None))
    return current, left


def _exclusions(settings: Settings, ds: str, email: str) -> tuple[list[Exclusion], bool]:
    path = audit_path(settings, ds)
    if not path.is_file():
        return [], False
    digest = hashlib.sha256(email.encode("utf-8")).hexdigest()
    con = duckdb.connect()
    try:
        rows = con.execute("SELECT segment, reason, detail FROM read_parquet(?)"
                           " WHERE email_sha256 = ? ORDER BY segment", [str(path), digest]).fetchall()
    finally:
        con.close()
    out = []
    for segment, reason, detail in rows:
        text = REASONS.get(reason, reason)
        if reason == "suppressed" and detail:
            text = SUPPRESSION_DETAILS.get(str(detail).lower(), f"{text} ({detail})")
        out.append(Exclusion(segment, reason, text))
    return out, True


def lookup(settings: Settings, email: str, max_exports: int = MAX_EXPORTS) -> LookupResult:
    """Everything the exports say about the person with `email` (exact match)."""
    address = normalise(email)
    exports = store.all_exports(settings)[:max_exports]  # newest first
    result = LookupResult(masked_email=mask_email(address), latest_ds=exports[0].ds if exports else None,
                          exports_searched=len(exports))
    if exports:
        present = _presence(exports, address)
        result.current, result.left = _spells(exports, present) if present else ([], [])
        result.excluded, result.has_exclusion_record = _exclusions(settings, exports[0].ds, address)
        for m in result.current:
            if m.is_holdout:
                result.excluded.append(Exclusion(m.segment, "holdout", REASONS["holdout"]))
    # Never the email: only whether something was found.
    log_event(logger, "portal_lookup", found=result.found, exports=len(exports))
    return result
