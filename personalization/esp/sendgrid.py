"""SendGrid Marketing Campaigns (new contacts API) adapter.

Each export segment is a SendGrid list of the same name. Contacts are upserted with
`PUT /v3/marketing/contacts` (<= 30,000 contacts and <= 6 MB = 6,000,000 bytes per request;
asynchronous: the answer is a `job_id`, polled at `GET /v3/marketing/contacts/imports/{id}`;
rejected rows are listed at the job's `errors_url`). A request's `list_ids` apply to all its
contacts, so contacts are grouped by the lists they join and each is written once.

Field names: export columns that are SendGrid reserved fields (`first_name`, `city`,
`country`, `postal_code`, ...) go to that reserved field (FNAME/LNAME are aliases of
`first_name`/`last_name`); every other column is a custom Text field of the same name,
created when missing. SendGrid compares names case-insensitively and refuses a custom field
named like a reserved one, so neither can happen here.

Removal and erasure look the contact ids up by email (`POST /v3/marketing/contacts/search/
emails`, <= 100), then `DELETE /v3/marketing/lists/{id}/contacts` or
`DELETE /v3/marketing/contacts?ids=`. Mirror mode reads a list's members through a contacts
export job. Suppressions come from the global unsubscribes, group (ASM) suppressions,
bounces and spam reports. Bearer auth.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from personalization.config import Settings
from personalization.esp.base import (
    ApiAdapter,
    ContactChange,
    Failures,
    Suppression,
    failed_change,
)
from personalization.esp.batching import MB, JsonEnvelope, chunks, pack
from personalization.esp.creates import NamedResources
from personalization.esp.credentials import Credentials
from personalization.esp.fields import FieldMap, FieldRuleError
from personalization.esp.jobs import poll
from personalization.esp.sync_log import SyncLog
from personalization.exceptions import SyncError

MAX_CONTACTS = 30_000
MAX_BYTES = 6 * MB
LOOKUP_MAX = 100  # emails per search/emails call and ids per DELETE
SUPPRESSION_PAGE = 500
# Reserved fields a contact upsert may set (docs: Add or Update a Contact, ContactRequest).
RESERVED_WRITABLE = frozenset({
    "email", "first_name", "last_name", "alternate_emails", "address_line_1",
    "address_line_2", "city", "state_province_region", "postal_code", "country",
    "phone_number_id", "external_id", "anonymous_id",
})
# Reserved fields SendGrid maintains itself: no custom field may take these names.
RESERVED_READ_ONLY = frozenset({
    "created_at", "updated_at", "contact_id", "last_clicked", "last_opened", "last_emailed",
    "lists", "segments", "automation_id", "unique_name",
})
# Our merge tags that name a reserved field differently.
ALIASES = {"FNAME": "first_name", "LNAME": "last_name", "POSTCODE": "postal_code",
           "STREET": "address_line_1"}
CUSTOM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
# What each suppression endpoint means in the lake.
SUPPRESSION_ENDPOINTS = {
    "/v3/suppression/unsubscribes": "unsubscribe",
    "/v3/asm/suppressions": "unsubscribe",  # group unsubscribes
    "/v3/suppression/bounces": "bounce",
    "/v3/suppression/spam_reports": "spam_complaint",
}


def field_name(column: str) -> str:
    """Export column -> SendGrid field: a reserved field, or a custom field of that name."""
    if column.upper() in ALIASES:
        return ALIASES[column.upper()]
    if column.lower() == "email":
        raise FieldRuleError("'email' is the contact's key, not a field")
    if column.lower() in RESERVED_WRITABLE:
        return column.lower()
    check_custom_name(column)
    return column


def check_custom_name(name: str) -> None:
    if name.lower() in RESERVED_WRITABLE:
        return  # a reserved field, written as such
    if name.lower() in RESERVED_READ_ONLY:
        raise FieldRuleError(f"{name.lower()!r} is a read-only SendGrid reserved field")
    if not CUSTOM_NAME.fullmatch(name):
        raise FieldRuleError(f"custom field name {name!r} must be 1-100 of A-Z, 0-9, _ "
                             "and not start with a digit")


class SendGridAdapter(ApiAdapter):
    """SendGrid lists + reserved and custom fields."""

    name = "sendgrid"
    # Below the 30,000 cap: a job that errors as a whole costs less to redo, and the
    # byte cap is checked per request anyway.
    upsert_batch_size = 10_000
    remove_batch_size = LOOKUP_MAX
    erase_batch_size = LOOKUP_MAX
    concurrency = 2

    def __init__(self, settings: Settings, log: SyncLog, mode: str = "delta", *,
                 credentials: Credentials, **kwargs):
        super().__init__(settings, log, mode,
                         base_url=credentials.base_url or "https://api.sendgrid.com",
                         headers={"Authorization": f"Bearer {credentials.api_key}"}, **kwargs)
        self.list_ids = NamedResources(
            self.name, "list", self.http,
            fetch=lambda: [(i["name"], i["id"]) for i in self.http.request(
                "GET", "/v3/marketing/lists", endpoint="GET /v3/marketing/lists",
                params={"page_size": 1000}).json().get("result", [])],
            create=lambda name: self._create("/v3/marketing/lists", {"name": name}))
        self.field_ids = NamedResources(
            self.name, "custom field", self.http,
            fetch=lambda: [(f["name"], f["id"]) for f in self.http.request(
                "GET", "/v3/marketing/field_definitions",
                endpoint="GET /v3/marketing/field_definitions").json().get("custom_fields", [])],
            create=lambda name: self._create("/v3/marketing/field_definitions",
                                             {"name": name, "field_type": "Text"}))

    # --- field names ------------------------------------------------------------------
    def field_rule(self, column: str) -> str:
        return field_name(column)

    def field_check(self, name: str) -> None:
        check_custom_name(name)

    @staticmethod
    def field_fold(name: str) -> str:
        return name.lower()  # SendGrid field names are case-insensitively unique

    # --- creates ----------------------------------------------------------------------
    def _create(self, path: str, payload: dict) -> str | None:
        r = self.http.request("POST", path, endpoint=f"POST {path}", json=payload, retries=0,
                              ok_statuses=(400,))
        if r.status_code == 400:
            messages = " ".join(e.get("message", "") for e in r.json().get("errors", []))
            if "already exists" in messages.lower():
                return None
            raise SyncError(f"POST {path} answered 400: {messages}")
        return r.json()["id"]

    def prepare(self, segments: list[str], fields: FieldMap) -> None:
        for name in segments:
            self.list_ids.ensure(name)
        for name in sorted(set(fields.targets.values())):
            if name.lower() not in RESERVED_WRITABLE:
                self.field_ids.ensure(name)

    def _row(self, c: ContactChange) -> str:
        assert self.fields is not None
        row: dict = {"email": c.email}
        custom = {}
        for name, value in self.fields.apply(c.fields).items():
            if name.lower() in RESERVED_WRITABLE:
                row[name.lower()] = value
            else:
                custom[self.field_ids.ensure(name)] = value
        if custom:
            row["custom_fields"] = custom
        return json.dumps(row)

    # --- primitives -------------------------------------------------------------------
    def upsert(self, changes: Sequence[ContactChange]) -> Failures:
        failed: Failures = {}
        groups: dict[tuple[str, ...], list[ContactChange]] = {}
        for c in changes:
            groups.setdefault(tuple(sorted(c.lists)), []).append(c)
        for lists, group in sorted(groups.items()):
            envelope = JsonEnvelope({"list_ids": [self.list_ids.ensure(s) for s in lists],
                                     "contacts": JsonEnvelope.ROWS})
            rows = [self._row(c) for c in group]
            parts, too_big = pack(rows, envelope, max_records=MAX_CONTACTS, max_bytes=MAX_BYTES)
            for i in too_big:
                failed |= failed_change(group[i], f"contact over {MAX_BYTES:,} bytes")
            for part in parts:
                rejected = self._put(envelope.body([rows[i] for i in part]), len(part))
                for i in part:
                    if group[i].email in rejected:
                        failed |= failed_change(group[i], rejected[group[i].email])
        return failed

    def _put(self, body: str, records: int) -> dict[str, str]:
        """One upsert request and its job; {email: error} of rejected rows."""
        job = self.http.request("PUT", "/v3/marketing/contacts",
                                endpoint="PUT /v3/marketing/contacts", records=records,
                                content=body, headers={"Content-Type": "application/json"}
                                ).json()["job_id"]
        status = poll(lambda: self.http.request(
            "GET", f"/v3/marketing/contacts/imports/{job}",
            endpoint="GET /v3/marketing/contacts/imports/{id}").json(),
            lambda s: s.get("status") in ("completed", "errored", "failed"),
            interval=self.settings.esp_poll_interval_seconds,
            timeout=max(60.0, self.policy.timeout * 10), what=f"SendGrid import {job}")
        if status["status"] == "failed":
            raise SyncError(f"SendGrid import job {job} failed as a whole")
        results = status.get("results", {})
        if not results.get("errored_count"):
            return {}
        url = results.get("errors_url")
        if not url:
            raise SyncError(f"SendGrid import job {job} rejected rows but gave no errors_url")
        text = self.http.request("GET", url, endpoint="GET errors_url", presigned=True).text
        return {row["email"].lower(): row.get("error") or "rejected"
                for row in csv.DictReader(io.StringIO(text)) if row.get("email")}

    def _contact_ids(self, emails: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for part in chunks(list(emails), LOOKUP_MAX):
            r = self.http.request("POST", "/v3/marketing/contacts/search/emails",
                                  endpoint="POST /v3/marketing/contacts/search/emails",
                                  records=len(part), json={"emails": list(part)},
                                  ok_statuses=(404,))
            if r.status_code == 404:  # none of them exists
                continue
            for email, hit in r.json().get("result", {}).items():
                if "contact" in hit:
                    found[email.lower()] = hit["contact"]["id"]
        return found

    def remove(self, segment: str, emails: Sequence[str]) -> dict[str, str]:
        list_id = self.list_ids.get(segment)
        ids = self._contact_ids(emails) if list_id else {}
        if ids:
            self.http.request("DELETE", f"/v3/marketing/lists/{list_id}/contacts",
                              endpoint="DELETE /v3/marketing/lists/{id}/contacts",
                              records=len(ids), params={"contact_ids": ",".join(ids.values())})
        return {}  # an address that is not a contact is not in the list: done

    def erase(self, emails: Sequence[str]) -> dict[str, str]:
        ids = self._contact_ids(emails)
        if ids:
            self.http.request("DELETE", "/v3/marketing/contacts",
                              endpoint="DELETE /v3/marketing/contacts", records=len(ids),
                              params={"ids": ",".join(ids.values())})
        return {}

    def members(self, segment: str) -> set[str]:
        list_id = self.list_ids.get(segment)
        if list_id is None:
            return set()
        export_id = self.http.request(
            "POST", "/v3/marketing/contacts/exports", endpoint="POST /v3/marketing/contacts/exports",
            json={"list_ids": [list_id], "file_type": "csv"}).json()["id"]
        status = poll(lambda: self.http.request(
            "GET", f"/v3/marketing/contacts/exports/{export_id}",
            endpoint="GET /v3/marketing/contacts/exports/{id}").json(),
            lambda s: s.get("status") in ("ready", "failure"),
            interval=self.settings.esp_poll_interval_seconds,
            timeout=max(60.0, self.policy.timeout * 10), what=f"SendGrid export {export_id}")
        if status["status"] != "ready":
            raise SyncError(f"SendGrid contacts export {export_id} failed")
        emails: set[str] = set()
        for url in status.get("urls", []):
            text = self.http.request("GET", url, endpoint="GET export url",
                                     presigned=True).text
            emails |= {row["EMAIL"].lower() for row in csv.DictReader(io.StringIO(text))}
        return emails

    def suppressions(self) -> Iterable[Suppression]:
        """Global unsubscribes, group unsubscribes, bounces and spam reports."""
        for path, reason in SUPPRESSION_ENDPOINTS.items():
            offset = 0
            while True:
                page = self.http.request("GET", path, endpoint=f"GET {path}",
                                         params={"limit": SUPPRESSION_PAGE,
                                                 "offset": offset}).json()
                for item in page:
                    created = item.get("created", item.get("created_at"))
                    esp_reason = (f"group:{item['group_name']}" if "group_name" in item
                                  else path.rsplit("/", 1)[1])
                    yield Suppression(item["email"], reason, esp_reason,
                                      datetime.fromtimestamp(created, UTC) if created else None)
                if len(page) < SUPPRESSION_PAGE:
                    break
                offset += SUPPRESSION_PAGE

