"""Mailchimp Marketing API v3 adapter.

One audience (`PERSONALIZATION_MAILCHIMP_LIST_ID`); each export segment is a static segment
(a tag in the Mailchimp UI) of that audience. Each person is written once per run with
`PUT /lists/{list_id}/members/{subscriber_hash}` carrying `status_if_new` and never `status`:
a new member gets the status our consent record gives, an existing member keeps whatever
status Mailchimp holds (an unsubscribe or bounce there is never undone by a sync). The PUTs
travel in batch operations (`POST /batches`, <= 500 operations each, polled at
`GET /batches/{id}`; per-operation results in the tar.gz at `response_body_url`). Joins and
leaves are `POST /lists/{list_id}/segments/{segment_id}` (`members_to_add` /
`members_to_remove`, <= 500 each). Erasure is a permanent delete. Auth is HTTP basic with the
API key; its `-usNN` suffix names the data centre.

Merge tags are at most 10 characters of A-Z, 0-9 and `_` (the column's first 10, upper
case); an audience holds few merge fields, so a segment's own columns are not sent.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterable, Sequence

from personalization.config import Settings
from personalization.esp.base import (
    CONTACT_LIST,
    ApiAdapter,
    ContactChange,
    Failures,
    Suppression,
    parse_time,
)
from personalization.esp.batching import chunks
from personalization.esp.creates import NamedResources
from personalization.esp.credentials import Credentials
from personalization.esp.fields import FieldMap, FieldRuleError
from personalization.esp.jobs import poll
from personalization.esp.sync_log import SyncLog
from personalization.exceptions import SyncError

MERGE_TAG_MAX = 10  # Mailchimp merge tags are at most 10 characters
MERGE_TAG = re.compile(r"[A-Z0-9_]{1,10}")
RESERVED_TAGS = frozenset({"EMAIL"})  # the address itself is not a merge field
SEGMENT_MAX = 500  # emails per members_to_add / members_to_remove
BATCH_OPERATIONS = 500  # member PUTs per batch operation request
PAGE = 1000  # members per page (Mailchimp's maximum `count`)
# Status a *new* member gets. The export holds only contacts our consent record shows as
# opted in (export/consent.py), so that record says "subscribed". Existing members' status
# is never sent: a sync must not resubscribe anyone.
NEW_MEMBER_STATUS = "subscribed"
# Member statuses that mean "do not mail", and what they are in the lake.
SUPPRESSED_STATUSES = {"unsubscribed": "unsubscribe", "cleaned": "bounce"}


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def merge_tag(column: str) -> str:
    """Export column -> merge tag (`FAV_CATEGORY` -> `FAV_CATEGO`)."""
    tag = column.upper()[:MERGE_TAG_MAX]
    check_merge_tag(tag)
    return tag


def check_merge_tag(tag: str) -> None:
    if not MERGE_TAG.fullmatch(tag):
        raise FieldRuleError(f"merge tag {tag!r} is not 1-10 characters of A-Z, 0-9, _")
    if tag in RESERVED_TAGS:
        raise FieldRuleError(f"merge tag {tag!r} is reserved by Mailchimp")


def _batch_results(raw: bytes) -> list[dict]:
    """Every operation result in a batch's response archive (tar.gz of JSON arrays)."""
    results: list[dict] = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".json"):
                results += json.load(archive.extractfile(member))
    return results


def base_url_for(api_key: str) -> str:
    if "-" not in api_key:
        raise SyncError("the Mailchimp API key has no data-centre suffix (like -us21)")
    return f"https://{api_key.rsplit('-', 1)[1]}.api.mailchimp.com"


class MailchimpAdapter(ApiAdapter):
    """Mailchimp audience + static segments."""

    name = "mailchimp"
    upsert_batch_size = BATCH_OPERATIONS
    remove_batch_size = SEGMENT_MAX
    erase_batch_size = 50
    concurrency = 10  # Mailchimp allows 10 simultaneous connections per user
    segment_fields = "drop"  # few merge fields per audience, 10-character tags

    def __init__(self, settings: Settings, log: SyncLog, mode: str = "delta", *,
                 credentials: Credentials, **kwargs):
        self.list_id = credentials.list_id
        super().__init__(settings, log, mode,
                         base_url=(credentials.base_url or base_url_for(credentials.api_key)),
                         auth=("personalization", credentials.api_key), **kwargs)
        lst = f"/3.0/lists/{self.list_id}"
        self.segment_ids = NamedResources(
            self.name, "static segment", self.http,
            fetch=lambda: [(s["name"], s["id"]) for s in self._paged(
                f"{lst}/segments", "GET /lists/{id}/segments", "segments", type="static")],
            create=lambda name: self._create(f"{lst}/segments", "POST /lists/{id}/segments",
                                             {"name": name, "static_segment": []}, "id"))
        self.merge_tags = NamedResources(
            self.name, "merge field", self.http,
            fetch=lambda: [(f["tag"], f["tag"]) for f in self._paged(
                f"{lst}/merge-fields", "GET /lists/{id}/merge-fields", "merge_fields")],
            create=lambda tag: self._create(f"{lst}/merge-fields", "POST /lists/{id}/merge-fields",
                                            {"tag": tag, "name": tag, "type": "text"}, "tag"))

    # --- field names ------------------------------------------------------------------
    def field_rule(self, column: str) -> str:
        return merge_tag(column)

    def field_check(self, name: str) -> None:
        check_merge_tag(name)

    # --- lookups and creates ----------------------------------------------------------
    def _paged(self, path: str, endpoint: str, key: str, **params) -> list[dict]:
        found, offset = [], 0
        while True:
            body = self.http.request("GET", path, endpoint=endpoint,
                                     params={**params, "count": PAGE, "offset": offset}).json()
            found += body.get(key, [])
            offset += PAGE
            if offset >= body.get("total_items", 0):
                return found

    def _create(self, path: str, endpoint: str, payload: dict, id_key: str) -> str | None:
        r = self.http.request("POST", path, endpoint=endpoint, json=payload, retries=0,
                              ok_statuses=(400,))
        if r.status_code == 400:
            body = r.json()
            if "already exists" in (body.get("detail") or "").lower():
                return None
            raise SyncError(f"{endpoint} answered 400: {body.get('detail') or body}")
        return r.json()[id_key]

    def prepare(self, segments: list[str], fields: FieldMap) -> None:
        for name in segments:
            self.segment_ids.ensure(name)
        for tag in sorted(set(fields.targets.values())):
            self.merge_tags.ensure(tag)

    # --- primitives -------------------------------------------------------------------
    def upsert(self, changes: Sequence[ContactChange]) -> Failures:
        failed: Failures = {}
        writes = [c for c in changes if c.action]
        for part in chunks(writes, BATCH_OPERATIONS):
            failed |= {(CONTACT_LIST, e): err for e, err in self._put_members(part).items()}
        by_segment: dict[str, list[str]] = {}
        for c in changes:
            if (CONTACT_LIST, c.email) not in failed:
                for s in c.lists:
                    by_segment.setdefault(s, []).append(c.email)
        for segment, emails in sorted(by_segment.items()):
            for part in chunks(emails, SEGMENT_MAX):
                failed |= {(segment, e): err for e, err in
                           self._segment_change(segment, "members_to_add", list(part)).items()}
        return failed

    def _put_members(self, contacts: Sequence[ContactChange]) -> dict[str, str]:
        """Upsert members in one batch operation, never touching an existing member's
        status; {email: error} of the operations Mailchimp refused."""
        assert self.fields is not None
        by_hash = {subscriber_hash(c.email): c.email for c in contacts}
        operations = [{
            "method": "PUT", "path": f"/lists/{self.list_id}/members/{h}", "operation_id": h,
            "body": json.dumps({"email_address": c.email, "status_if_new": NEW_MEMBER_STATUS,
                                "merge_fields": self.fields.apply(c.fields)}),
        } for c, h in zip(contacts, by_hash, strict=True)]
        # A lost answer replays the batch: the same PUTs again, harmless.
        batch_id = self.http.request("POST", "/3.0/batches", endpoint="POST /batches",
                                     records=len(operations),
                                     json={"operations": operations}).json()["id"]
        status = poll(lambda: self.http.request(
            "GET", f"/3.0/batches/{batch_id}", endpoint="GET /batches/{id}").json(),
            lambda b: b.get("status") == "finished",
            interval=self.settings.esp_poll_interval_seconds,
            timeout=max(60.0, self.policy.timeout * 10), what=f"Mailchimp batch {batch_id}")
        if not status.get("errored_operations"):
            return {}
        raw = self.http.request("GET", status["response_body_url"],
                                endpoint="GET response_body_url", presigned=True).content
        results = _batch_results(raw)
        failed = {}
        for result in results:
            if int(result.get("status_code", 500)) >= 400:
                body = json.loads(result.get("response") or "{}")
                email = by_hash.get(result.get("operation_id", ""))
                if email:
                    failed[email] = body.get("detail") or body.get("title") or "rejected"
        missing = set(by_hash) - {r.get("operation_id") for r in results}
        if missing:
            raise SyncError(f"Mailchimp batch {batch_id} reported no result for "
                            f"{len(missing)} operations")
        return failed

    def remove(self, segment: str, emails: Sequence[str]) -> dict[str, str]:
        if self.segment_ids.get(segment) is None:
            return {}
        return self._segment_change(segment, "members_to_remove", list(emails))

    def _segment_change(self, segment: str, key: str, emails: list[str]) -> dict[str, str]:
        seg_id = self.segment_ids.ensure(segment)
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
        seg_id = self.segment_ids.get(segment)
        if seg_id is None:
            return set()
        return {m["email_address"].lower() for m in self._paged(
            f"/3.0/lists/{self.list_id}/segments/{seg_id}/members",
            "GET /lists/{id}/segments/{id}/members", "members")}

    def suppressions(self) -> Iterable[Suppression]:
        """Unsubscribed and cleaned (hard-bounced) members of the audience."""
        for status, reason in SUPPRESSED_STATUSES.items():
            for m in self._paged(f"/3.0/lists/{self.list_id}/members",
                                 "GET /lists/{id}/members", "members", status=status,
                                 fields="members.email_address,members.status,"
                                        "members.last_changed,total_items"):
                yield Suppression(m["email_address"], reason, status,
                                  parse_time(m.get("last_changed")))

