"""Mailchimp Marketing API v3 adapter.

One audience (`PERSONALIZATION_MAILCHIMP_LIST_ID`); each export segment is a static segment
(a tag in the Mailchimp UI) of that audience. Members are upserted one by one with
`PUT /lists/{list_id}/members/{subscriber_hash}` carrying `status_if_new` and never `status`:
a new member gets the status our consent record gives, an existing member keeps whatever
status Mailchimp holds (an unsubscribe or bounce there is never undone by a sync). Then
they are added to the static segment with `POST /lists/{list_id}/segments/{segment_id}`
(`members_to_add`, <= 500).
Removing takes a member out of the segment, not out of the audience; erasure is a permanent
delete. Auth is HTTP basic with the API key; its `-usNN` suffix names the data centre.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from personalization.config import Settings
from personalization.esp.base import ApiAdapter
from personalization.esp.credentials import Credentials
from personalization.esp.reader import Contact
from personalization.esp.sync_log import SyncLog
from personalization.exceptions import SyncError

MERGE_TAG_MAX = 10  # Mailchimp merge tags are at most 10 characters
# Status a *new* member gets. The export holds only contacts our consent record shows as
# opted in (export/consent.py), so that record says "subscribed". Existing members' status
# is never sent: a sync must not resubscribe anyone.
NEW_MEMBER_STATUS = "subscribed"


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def merge_tag(column: str) -> str:
    """Export column -> merge tag (`FAV_CATEGORY` -> `FAV_CATEGO`)."""
    return column.upper()[:MERGE_TAG_MAX]


def base_url_for(api_key: str) -> str:
    if "-" not in api_key:
        raise SyncError("the Mailchimp API key has no data-centre suffix (like -us21)")
    return f"https://{api_key.rsplit('-', 1)[1]}.api.mailchimp.com"


class MailchimpAdapter(ApiAdapter):
    """Mailchimp audience + static segments."""

    name = "mailchimp"
    upsert_batch_size = 500
    remove_batch_size = 500
    erase_batch_size = 50
    concurrency = 10  # Mailchimp allows 10 simultaneous connections per user

    def __init__(self, settings: Settings, log: SyncLog, mode: str = "delta", *,
                 credentials: Credentials, **kwargs):
        self.list_id = credentials.list_id
        super().__init__(settings, log, mode,
                         base_url=(credentials.base_url or base_url_for(credentials.api_key)),
                         auth=("personalization", credentials.api_key), **kwargs)
        self._segment_ids: dict[str, int] | None = None
        self._merge_tags: set[str] | None = None
        self._lock = threading.Lock()

    # --- lookups ----------------------------------------------------------------------
    def _segments(self) -> dict[str, int]:
        if self._segment_ids is None:
            found, offset = {}, 0
            while True:
                body = self.http.request(
                    "GET", f"/3.0/lists/{self.list_id}/segments", endpoint="GET /lists/{id}/segments",
                    params={"type": "static", "count": 1000, "offset": offset}).json()
                found.update({s["name"]: s["id"] for s in body.get("segments", [])})
                offset += 1000
                if offset >= body.get("total_items", 0):
                    break
            self._segment_ids = found
        return self._segment_ids

    def _ensure_merge_fields(self, columns: set[str]) -> None:
        with self._lock:
            if self._merge_tags is None:
                body = self.http.request(
                    "GET", f"/3.0/lists/{self.list_id}/merge-fields",
                    endpoint="GET /lists/{id}/merge-fields", params={"count": 1000}).json()
                self._merge_tags = {f["tag"] for f in body.get("merge_fields", [])}
            for column in sorted(columns):
                tag = merge_tag(column)
                if tag not in self._merge_tags:
                    self.http.request("POST", f"/3.0/lists/{self.list_id}/merge-fields",
                                      endpoint="POST /lists/{id}/merge-fields",
                                      json={"tag": tag, "name": column, "type": "text"})
                    self._merge_tags.add(tag)

    def prepare(self, segments: list[str]) -> None:
        existing = self._segments()
        for name in segments:
            if name not in existing:
                body = self.http.request("POST", f"/3.0/lists/{self.list_id}/segments",
                                         endpoint="POST /lists/{id}/segments",
                                         json={"name": name, "static_segment": []}).json()
                existing[name] = body["id"]

    # --- primitives -------------------------------------------------------------------
    def upsert(self, segment: str, contacts: Sequence[Contact]) -> dict[str, str]:
        self._ensure_merge_fields({k for c in contacts for k in c.fields})
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            errors = list(pool.map(self._put_member, contacts))
        failed = {c.email: e for c, e in zip(contacts, errors, strict=True) if e}
        accepted = [c.email for c in contacts if c.email not in failed]
        if accepted:
            failed |= self._segment_change(segment, "members_to_add", accepted)
        return failed

    def _put_member(self, c: Contact) -> str | None:
        """Upsert one member without touching an existing member's status; error or None."""
        r = self.http.request(
            "PUT", f"/3.0/lists/{self.list_id}/members/{subscriber_hash(c.email)}",
            endpoint="PUT /lists/{id}/members/{hash}", records=1, ok_statuses=(400,),
            json={"email_address": c.email, "status_if_new": NEW_MEMBER_STATUS,
                  "merge_fields": {merge_tag(k): v for k, v in c.fields.items()}})
        if r.status_code == 400:
            body = r.json()
            return body.get("detail") or body.get("title") or "rejected"
        return None

    def remove(self, segment: str, emails: Sequence[str]) -> dict[str, str]:
        if segment not in self._segments():
            return {}
        return self._segment_change(segment, "members_to_remove", list(emails))

    def _segment_change(self, segment: str, key: str, emails: list[str]) -> dict[str, str]:
        seg_id = self._segments()[segment]
        body = self.http.request(
            "POST", f"/3.0/lists/{self.list_id}/segments/{seg_id}",
            endpoint="POST /lists/{id}/segments/{id}", records=len(emails),
            json={key: emails}).json()
        return {a.lower(): e.get("error", "rejected")
                for e in body.get("errors", []) for a in e.get("email_addresses", [])}

    def erase(self, emails: Sequence[str]) -> dict[str, str]:
        for email in emails:
            # 404: never was (or no longer is) in the audience; that is the goal.
            self.http.request(
                "POST", f"/3.0/lists/{self.list_id}/members/{subscriber_hash(email)}"
                "/actions/delete-permanent",
                endpoint="POST /lists/{id}/members/{hash}/actions/delete-permanent",
                records=1, ok_statuses=(404,))
        return {}

    def members(self, segment: str) -> set[str]:
        seg_id = self._segments().get(segment)
        if seg_id is None:
            return set()
        found, offset = set(), 0
        while True:
            body = self.http.request(
                "GET", f"/3.0/lists/{self.list_id}/segments/{seg_id}/members",
                endpoint="GET /lists/{id}/segments/{id}/members",
                params={"count": 1000, "offset": offset}).json()
            found |= {m["email_address"].lower() for m in body.get("members", [])}
            offset += 1000
            if offset >= body.get("total_items", 0):
                return found
