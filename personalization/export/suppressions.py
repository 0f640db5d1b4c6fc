"""The suppression list `<home>/suppressions.csv`: bounces and complaints, as hashes only."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from datetime import date

from personalization.config import Settings
from personalization.exceptions import ExportError
from personalization.export.consent import suppressions_path
from personalization.privacy.emails import email_sha256

COLUMNS = ("email_sha256", "reason", "suppressed_at")


def suppress(emails: Iterable[str], reason: str, suppressed_on: date, settings: Settings) -> int:
    """Add emails to the suppression list (stored hashed; existing hashes are kept as they were).

    Args:
        emails: plain addresses (e.g. hard bounces reported by an ESP).
        reason: `bounce`, `complaint`, ...
        suppressed_on: the logical date the ESP reported it.

    Returns:
        How many hashes were new.
    """
    path = suppressions_path(settings)
    rows: dict[str, dict[str, str]] = {}
    if path.exists():
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if "email_sha256" not in (reader.fieldnames or []):
                raise ExportError(f"{path} has no email_sha256 column; cannot append hashes")
            for row in reader:
                rows[row["email_sha256"].strip().lower()] = {c: row.get(c) or "" for c in COLUMNS}
    added = 0
    for email in emails:
        if not email or not email.strip():
            continue
        key = email_sha256(email)
        if key not in rows:
            rows[key] = {"email_sha256": key, "reason": reason,
                         "suppressed_at": suppressed_on.isoformat()}
            added += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows[k] for k in sorted(rows))
    os.replace(tmp, path)
    return added
