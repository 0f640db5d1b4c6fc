"""Privacy by design: erasure of every copy, access requests, retention, encryption at rest.

Public surface (imported lazily, so `personalization.privacy.emails` stays light for the
extract and the dbt-free tools):

- `erase(ds, settings)` / `erase_arrivals(ds, settings)`: the nightly erasure steps.
- `purge_erasure_requests(ds, settings)`: drop requesters' plain emails once every ESP
  confirmed the deletion.
- `enforce_retention(ds, settings)`: the retention windows.
- `subject_access(email, out_dir, settings)`: everything held about one person.
- `privacy.reviews`: erasure requests for a shared address, held until an operator confirms.
- `is_valid_email`, `valid_email_sql`, `email_sha256`: the one email rule and hash.

See docs/privacy.md.
"""

from __future__ import annotations

from personalization.privacy.emails import email_sha256, is_valid_email, valid_email_sql

__all__ = ["email_sha256", "enforce_retention", "erase", "erase_arrivals", "is_valid_email",
           "purge_erasure_requests", "subject_access", "valid_email_sql"]


def __getattr__(name: str):
    if name in ("erase", "erase_arrivals"):
        from personalization.privacy import erasure as module

        return getattr(module, name)
    if name == "purge_erasure_requests":
        from personalization.privacy.purge import purge_erasure_requests

        return purge_erasure_requests
    if name == "enforce_retention":
        from personalization.privacy.retention import enforce_retention

        return enforce_retention
    if name == "subject_access":
        from personalization.privacy.access import subject_access

        return subject_access
    raise AttributeError(name)
