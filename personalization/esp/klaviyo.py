"""Klaviyo (JSON:API, dated `revision` header) adapter.

Each export segment is a Klaviyo list of the same name. Profiles are upserted with bulk
import jobs `POST /api/profile-bulk-import-jobs` (<= 10,000 profiles and 5 MB per job, with
the list as a relationship), polled at `GET /api/profile-bulk-import-jobs/{id}`; rejected
profiles come from `.../{id}/import-errors`. FNAME/LNAME/CITY map to `first_name`,
`last_name`, `location.city`, the other merge tags to custom `properties`. Removal looks
profile ids up (`GET /api/profiles?filter=any(email,[...])`) and deletes the list
relationship; erasure is a data-privacy deletion job per address. 429s carry `Retry-After`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from personalization.config import Settings
from personalization.esp.base import ApiAdapter, chunks
from personalization.esp.credentials import Credentials
from personalization.esp.jobs import poll
from personalization.esp.reader import Contact
from personalization.esp.sync_log import SyncLog

REVISION = "2025-01-15"
MAX_PROFILES = 10_000
MAX_BYTES = 5 * 1024 * 1024
PAGE = 100  # profiles per page / emails per `any()` filter
JSONAPI = "application/vnd.api+json"


def _profile(c: Contact) -> dict:
    attrs: dict = {"email": c.email}
    if "FNAME" in c.fields:
        attrs["first_name"] = c.fields["FNAME"]
    if "LNAME" in c.fields:
        attrs["last_name"] = c.fields["LNAME"]
    if "CITY" in c.fields:
        attrs["location"] = {"city": c.fields["CITY"]}
    props = {k: v for k, v in c.fields.items() if k not in ("FNAME", "LNAME", "CITY")}
    if props:
        attrs["properties"] = props
    return {"type": "profile", "attributes": attrs}


class KlaviyoAdapter(ApiAdapter):
    """Klaviyo lists + profile properties."""

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
        self._lists: dict[str, str] | None = None

    def _paged(self, path: str, endpoint: str, params: dict | None = None) -> list[dict]:
        out: list[dict] = []
        url: str | None = path
        while url:
            body = self.http.request("GET", url, endpoint=endpoint,
                                     params=params if url == path else None).json()
            out += body.get("data", [])
            url = (body.get("links") or {}).get("next")
        return out

    def _list_ids(self) -> dict[str, str]:
        if self._lists is None:
            self._lists = {d["attributes"]["name"]: d["id"]
                           for d in self._paged("/api/lists", "GET /api/lists")}
        return self._lists

    def prepare(self, segments: list[str]) -> None:
        lists = self._list_ids()
        for name in segments:
            if name not in lists:
                body = self.http.request("POST", "/api/lists", endpoint="POST /api/lists",
                                         json={"data": {"type": "list",
                                                        "attributes": {"name": name}}}).json()
                lists[name] = body["data"]["id"]

    def upsert(self, segment: str, contacts: Sequence[Contact]) -> dict[str, str]:
        payload = {"data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [_profile(c) for c in contacts]}},
            "relationships": {"lists": {"data": [{"type": "list",
                                                  "id": self._list_ids()[segment]}]}},
        }}
        body = json.dumps(payload)
        if len(body) > MAX_BYTES and len(contacts) > 1:
            half = len(contacts) // 2
            return self.upsert(segment, contacts[:half]) | self.upsert(segment, contacts[half:])
        job_id = self.http.request(
            "POST", "/api/profile-bulk-import-jobs", endpoint="POST /api/profile-bulk-import-jobs",
            records=len(contacts), content=body, limiter="bulk").json()["data"]["id"]
        job = poll(lambda: self.http.request(
            "GET", f"/api/profile-bulk-import-jobs/{job_id}",
            endpoint="GET /api/profile-bulk-import-jobs/{id}", limiter="bulk").json()["data"],
            lambda d: d["attributes"]["status"] in ("complete", "cancelled"),
            interval=self.settings.esp_poll_interval_seconds,
            timeout=max(60.0, self.policy.timeout * 10), what=f"Klaviyo import {job_id}")
        attrs = job["attributes"]
        if attrs["status"] == "cancelled":
            return {c.email: "import job cancelled" for c in contacts}
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
        list_id = self._list_ids().get(segment)
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
        list_id = self._list_ids().get(segment)
        if list_id is None:
            return set()
        return {d["attributes"]["email"].lower() for d in self._paged(
            f"/api/lists/{list_id}/profiles", "GET /api/lists/{id}/profiles",
            {"page[size]": PAGE, "fields[profile]": "email"})}
