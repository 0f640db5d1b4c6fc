"""SendGrid Marketing Campaigns (new contacts API) adapter.

Each export segment is a SendGrid list of the same name. Contacts are upserted with
`PUT /v3/marketing/contacts` (<= 30,000 contacts or 6 MB per request; asynchronous: the
answer is a `job_id`, polled at `GET /v3/marketing/contacts/imports/{id}`; rejected rows
are listed at the job's `errors_url`). FNAME/LNAME/CITY map to the reserved fields, other
merge tags to custom fields (created when missing). Removal and erasure first look the
contact ids up by email (`POST /v3/marketing/contacts/search/emails`, <= 100), then
`DELETE /v3/marketing/lists/{id}/contacts` or `DELETE /v3/marketing/contacts?ids=`.
Mirror mode reads a list's members through a contacts export job. Bearer auth.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Sequence

from personalization.config import Settings
from personalization.esp.base import ApiAdapter, chunks
from personalization.esp.credentials import Credentials
from personalization.esp.jobs import poll
from personalization.esp.reader import Contact
from personalization.esp.sync_log import SyncLog
from personalization.exceptions import SyncError

RESERVED = {"FNAME": "first_name", "LNAME": "last_name", "CITY": "city"}
MAX_CONTACTS = 30_000
MAX_BYTES = 6 * 1024 * 1024
LOOKUP_MAX = 100  # emails per search/emails call and ids per DELETE


class SendGridAdapter(ApiAdapter):
    """SendGrid lists + custom fields."""

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
        self._lists: dict[str, str] | None = None
        self._fields: dict[str, str] | None = None  # custom field name -> id
        self._lock = threading.Lock()

    # --- lookups ----------------------------------------------------------------------
    def _list_ids(self) -> dict[str, str]:
        if self._lists is None:
            body = self.http.request("GET", "/v3/marketing/lists", endpoint="GET /v3/marketing/lists",
                                     params={"page_size": 1000}).json()
            self._lists = {item["name"]: item["id"] for item in body.get("result", [])}
        return self._lists

    def prepare(self, segments: list[str]) -> None:
        lists = self._list_ids()
        for name in segments:
            if name not in lists:
                body = self.http.request("POST", "/v3/marketing/lists",
                                         endpoint="POST /v3/marketing/lists", json={"name": name})
                lists[name] = body.json()["id"]

    def _ensure_fields(self, names: set[str]) -> dict[str, str]:
        with self._lock:
            if self._fields is None:
                body = self.http.request("GET", "/v3/marketing/field_definitions",
                                         endpoint="GET /v3/marketing/field_definitions").json()
                self._fields = {f["name"]: f["id"] for f in body.get("custom_fields", [])}
            for name in sorted(names - set(RESERVED) - set(self._fields)):
                body = self.http.request("POST", "/v3/marketing/field_definitions",
                                         endpoint="POST /v3/marketing/field_definitions",
                                         json={"name": name, "field_type": "Text"}).json()
                self._fields[name] = body["id"]
            return self._fields

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

    # --- primitives -------------------------------------------------------------------
    def upsert(self, segment: str, contacts: Sequence[Contact]) -> dict[str, str]:
        fields = self._ensure_fields({k for c in contacts for k in c.fields})
        rows = []
        for c in contacts:
            row = {"email": c.email}
            row.update({RESERVED[k]: v for k, v in c.fields.items() if k in RESERVED})
            custom = {fields[k]: v for k, v in c.fields.items() if k not in RESERVED}
            if custom:
                row["custom_fields"] = custom
            rows.append(row)
        body = json.dumps({"list_ids": [self._list_ids()[segment]], "contacts": rows})
        if len(body) > MAX_BYTES and len(contacts) > 1:
            half = len(contacts) // 2
            return self.upsert(segment, contacts[:half]) | self.upsert(segment, contacts[half:])
        job = self.http.request("PUT", "/v3/marketing/contacts", endpoint="PUT /v3/marketing/contacts",
                                records=len(rows), content=body,
                                headers={"Content-Type": "application/json"}).json()["job_id"]
        status = self._wait_import(job)
        if status["status"] == "failed":
            return {c.email: "import job failed" for c in contacts}
        results = status.get("results", {})
        if not results.get("errored_count"):
            return {}
        return self._import_errors(results.get("errors_url"), contacts)

    def _wait_import(self, job_id: str) -> dict:
        return poll(lambda: self.http.request(
            "GET", f"/v3/marketing/contacts/imports/{job_id}",
            endpoint="GET /v3/marketing/contacts/imports/{id}").json(),
            lambda s: s.get("status") in ("completed", "errored", "failed"),
            interval=self.settings.esp_poll_interval_seconds,
            timeout=max(60.0, self.policy.timeout * 10), what=f"SendGrid import {job_id}")

    def _import_errors(self, url: str | None, contacts: Sequence[Contact]) -> dict[str, str]:
        if not url:
            return {c.email: "rejected (no error report)" for c in contacts}
        text = self.http.request("GET", url, endpoint="GET errors_url",
                                 presigned=True).text
        failed = {row["email"].lower(): row.get("error") or "rejected"
                  for row in csv.DictReader(io.StringIO(text)) if row.get("email")}
        return failed

    def remove(self, segment: str, emails: Sequence[str]) -> dict[str, str]:
        list_id = self._list_ids().get(segment)
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
        list_id = self._list_ids().get(segment)
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
