"""Klaviyo (JSON:API, dated `revision` header) adapter.

Each export segment is a Klaviyo list of the same name. Profiles are upserted with bulk
import jobs `POST /api/profile-bulk-import-jobs` (<= 10,000 profiles and <= 5 MB =
5,000,000 bytes per job), polled at `GET /api/profile-bulk-import-jobs/{id}`; rejected
profiles come from `.../{id}/import-errors`. A job can add its profiles to one list, so
profiles are grouped by the list they join; a profile joining several lists is imported
with the first and added to the others through `POST /api/lists/{id}/relationships/profiles`.
Imports never change consent or suppression (Klaviyo documents that), so a sync cannot
resubscribe anyone.

Field names: FNAME/LNAME go to `first_name`/`last_name`, CITY/COUNTRY to `location.city`/
`location.country`, every other column to a custom property of the same name (a key may not
start with `$`, Klaviyo's own properties).

Removal looks profile ids up (`GET /api/profiles?filter=any(email,[...])`) and deletes the
list relationship; erasure is a data-privacy deletion job per address; suppressed profiles
(unsubscribed, bounced, spam complaints, suppressed by hand) are read with
`GET /api/profiles?additional-fields[profile]=subscriptions` filtered on the suppression
timestamp. 429s carry `Retry-After`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from personalization.config import Settings
from personalization.esp.base import (
    CONTACT_LIST,
    ApiAdapter,
    ContactChange,
    Failures,
    Suppression,
    failed_change,
    parse_time,
)
from personalization.esp.batching import MB, JsonEnvelope, chunks, pack
from personalization.esp.creates import NamedResources
from personalization.esp.credentials import Credentials
from personalization.esp.fields import FieldMap, FieldRuleError
from personalization.esp.jobs import poll
from personalization.esp.sync_log import SyncLog
from personalization.exceptions import SyncError

REVISION = "2025-01-15"
MAX_PROFILES = 10_000
MAX_BYTES = 5 * MB
PAGE = 100  # profiles per page / emails per `any()` filter
RELATIONSHIPS_MAX = 1000  # profiles per list relationship request
JSONAPI = "application/vnd.api+json"
ATTRIBUTES = {"FNAME": "first_name", "LNAME": "last_name", "CITY": "location.city",
              "COUNTRY": "location.country"}
SUPPRESSION_REASONS = {"UNSUBSCRIBE": "unsubscribe", "HARD_BOUNCE": "bounce",
                       "SPAM_COMPLAINT": "spam_complaint", "INVALID_EMAIL": "invalid_email",
                       "USER_SUPPRESSED": "manual"}


def field_path(column: str) -> str:
    """Export column -> profile attribute path (`location.city`, `properties.RECO_1`)."""
    if column.upper() in ATTRIBUTES:
        return ATTRIBUTES[column.upper()]
    path = f"properties.{column}"
    check_path(path)
    return path


def check_path(path: str) -> None:
    if path in ATTRIBUTES.values():
        return
    key = path.removeprefix("properties.")
    if not path.startswith("properties.") or not key:
        raise FieldRuleError(f"{path!r} is not a profile attribute this sync writes "
                             f"({', '.join(sorted(ATTRIBUTES.values()))}) or properties.<name>")
    if key.startswith("$"):
        raise FieldRuleError(f"property {key!r} starts with '$', which Klaviyo reserves")


def _profile(email: str, fields: dict[str, str]) -> dict:
    attrs: dict = {"email": email}
    for path, value in fields.items():
        target = attrs
        *parents, leaf = path.split(".", 1) if path.startswith("properties.") else \
            path.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    return {"type": "profile", "attributes": attrs}


class KlaviyoAdapter(ApiAdapter):
    """Klaviyo lists + profile attributes and properties."""

    name = "klaviyo"
    upsert_batch_size = MAX_PROFILES
    remove_batch_size = 1000
    erase_batch_size = 50
    concurrency = 2
    # Published per-endpoint burst limits; steady-state 429s are absorbed by Retry-After.
    rate_limits = {"bulk": 10.0, "privacy": 3.0}

    def __init__(self, settings: Settings, log: SyncLog, mode: str = "delta", *,
                 credentials: Credentials, **kwargs):
        super().__init__(settings, log, mode,
                         base_url=credentials.base_url or "https://a.klaviyo.com",
                         headers={"Authorization": f"Klaviyo-API-Key {credentials.api_key}",
                                  "revision": REVISION, "accept": JSONAPI,
                                  "content-type": JSONAPI}, **kwargs)
        self.list_ids = NamedResources(
            self.name, "list", self.http,
            fetch=lambda: [(d["attributes"]["name"], d["id"])
                           for d in self._paged("/api/lists", "GET /api/lists")],
            create=self._create_list)

    # --- field names ------------------------------------------------------------------
    def field_rule(self, column: str) -> str:
        return field_path(column)

    def field_check(self, name: str) -> None:
        check_path(name)

    # --- lookups and creates ----------------------------------------------------------
    def _paged(self, path: str, endpoint: str, params: dict | None = None) -> list[dict]:
        out: list[dict] = []
        url: str | None = path
        while url:
            body = self.http.request("GET", url, endpoint=endpoint,
                                     params=params if url == path else None).json()
            out += body.get("data", [])
            url = (body.get("links") or {}).get("next")
        return out

    def _create_list(self, name: str) -> str | None:
        r = self.http.request("POST", "/api/lists", endpoint="POST /api/lists", retries=0,
                              json={"data": {"type": "list", "attributes": {"name": name}}})
        return r.json()["data"]["id"]

    def prepare(self, segments: list[str], fields: FieldMap) -> None:
        for name in segments:
            self.list_ids.ensure(name)

    # --- primitives -------------------------------------------------------------------
    def upsert(self, changes: Sequence[ContactChange]) -> Failures:
        assert self.fields is not None
        failed: Failures = {}
        groups: dict[str | None, list[ContactChange]] = {}
        for c in changes:
            groups.setdefault(c.lists[0] if c.lists else None, []).append(c)
        for first, group in sorted(groups.items(), key=lambda kv: kv[0] or ""):
            relationships = ({"lists": {"data": [{"type": "list",
                                                  "id": self.list_ids.ensure(first)}]}}
                             if first else {})
            envelope = JsonEnvelope({"data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": JsonEnvelope.ROWS}},
                **({"relationships": relationships} if relationships else {})}})
            rows = [json.dumps(_profile(c.email, self.fields.apply(c.fields))) for c in group]
            parts, too_big = pack(rows, envelope, max_records=MAX_PROFILES, max_bytes=MAX_BYTES)
            for i in too_big:
                failed |= failed_change(group[i], f"profile over {MAX_BYTES:,} bytes")
            for part in parts:
                rejected = self._import(envelope.body([rows[i] for i in part]), len(part))
                for i in part:
                    if group[i].email in rejected:
                        failed |= failed_change(group[i], rejected[group[i].email])
        # Joins a job could not carry: profiles in more than one new list.
        extra: dict[str, list[str]] = {}
        for c in changes:
            if (CONTACT_LIST, c.email) not in failed:
                for s in c.lists[1:]:
                    extra.setdefault(s, []).append(c.email)
        for segment, emails in sorted(extra.items()):
            ids = self._profile_ids(emails)
            failed |= {(segment, e): "profile not found" for e in emails if e not in ids}
            list_id = self.list_ids.ensure(segment)
            for part in chunks([ids[e] for e in emails if e in ids], RELATIONSHIPS_MAX):
                self.http.request("POST", f"/api/lists/{list_id}/relationships/profiles",
                                  endpoint="POST /api/lists/{id}/relationships/profiles",
                                  records=len(part),
                                  json={"data": [{"type": "profile", "id": i} for i in part]})
        return failed

    def _import(self, body: str, records: int) -> dict[str, str]:
        """One bulk import job, polled to its end; {email: error} of rejected profiles."""
        job_id = self.http.request(
            "POST", "/api/profile-bulk-import-jobs", endpoint="POST /api/profile-bulk-import-jobs",
            records=records, content=body, limiter="bulk").json()["data"]["id"]
        job = poll(lambda: self.http.request(
            "GET", f"/api/profile-bulk-import-jobs/{job_id}",
            endpoint="GET /api/profile-bulk-import-jobs/{id}", limiter="bulk").json()["data"],
            lambda d: d["attributes"]["status"] in ("complete", "cancelled"),
            interval=self.settings.esp_poll_interval_seconds,
            timeout=max(60.0, self.policy.timeout * 10), what=f"Klaviyo import {job_id}")
        attrs = job["attributes"]
        if attrs["status"] == "cancelled":
            raise SyncError(f"Klaviyo import job {job_id} was cancelled")
        if not attrs.get("failed_count"):
            return {}
        errors = self._paged(f"/api/profile-bulk-import-jobs/{job_id}/import-errors",
                             "GET /api/profile-bulk-import-jobs/{id}/import-errors")
        failed = {}
        for e in errors:
            a = e.get("attributes", {})
            email = ((a.get("original_payload") or {}).get("email") or "").lower()
            failed[email] = a.get("detail") or a.get("title") or "rejected"
        return failed

    def _profile_ids(self, emails: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for part in chunks(list(emails), PAGE):
            quoted = ",".join(json.dumps(e) for e in part)
            for d in self._paged("/api/profiles", "GET /api/profiles",
                                 {"filter": f"any(email,[{quoted}])", "page[size]": PAGE}):
                found[d["attributes"]["email"].lower()] = d["id"]
        return found

    def remove(self, segment: str, emails: Sequence[str]) -> dict[str, str]:
        list_id = self.list_ids.get(segment)
        ids = self._profile_ids(emails) if list_id else {}
        if ids:
            self.http.request("DELETE", f"/api/lists/{list_id}/relationships/profiles",
                              endpoint="DELETE /api/lists/{id}/relationships/profiles",
                              records=len(ids),
                              json={"data": [{"type": "profile", "id": i} for i in ids.values()]})
        return {}

    def erase(self, emails: Sequence[str]) -> dict[str, str]:
        for email in emails:
            self.http.request(
                "POST", "/api/data-privacy-deletion-jobs",
                endpoint="POST /api/data-privacy-deletion-jobs", records=1, limiter="privacy",
                json={"data": {"type": "data-privacy-deletion-job", "attributes": {
                    "profile": {"data": {"type": "profile", "attributes": {"email": email}}}}}})
        return {}

    def members(self, segment: str) -> set[str]:
        list_id = self.list_ids.get(segment)
        if list_id is None:
            return set()
        return {d["attributes"]["email"].lower() for d in self._paged(
            f"/api/lists/{list_id}/profiles", "GET /api/lists/{id}/profiles",
            {"page[size]": PAGE, "fields[profile]": "email"})}

    def suppressions(self) -> Iterable[Suppression]:
        """Profiles suppressed for email marketing, whatever the reason."""
        for d in self._paged("/api/profiles", "GET /api/profiles", {
                "additional-fields[profile]": "subscriptions", "page[size]": PAGE,
                "filter": "greater-than(subscriptions.email.marketing.suppression.timestamp,"
                          "1970-01-01T00:00:00Z)"}):
            attrs = d["attributes"]
            marketing = ((attrs.get("subscriptions") or {}).get("email") or {}).get(
                "marketing") or {}
            for s in marketing.get("suppression") or []:
                yield Suppression(attrs["email"], SUPPRESSION_REASONS.get(s["reason"], "manual"),
                                  s["reason"], parse_time(s.get("timestamp")))

