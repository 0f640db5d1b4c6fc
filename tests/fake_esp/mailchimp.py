"""Fake Mailchimp Marketing API v3: one audience, merge fields, static segments, members.

Enforces what Mailchimp documents: merge tags of 1-10 characters A-Z/0-9/_, EMAIL reserved,
a tag at most once ("already exists"), at most 30 merge fields per audience, 500 emails per
segment change, and no status change for a member in a compliance state (unsubscribed,
cleaned). Static segment names may repeat (so a blindly retried create makes a duplicate).
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import re
import tarfile

from .server import FakeEsp, Request

P = r"/3\.0/lists/(?P<list>[^/]+)"
MAX_MERGE_FIELDS = 30


class FakeMailchimp(FakeEsp):
    max_concurrent = 10  # Mailchimp: 10 simultaneous connections
    routes = [
        ("GET", P + "/merge-fields", "get_merge_fields"),
        ("POST", P + "/merge-fields", "post_merge_field"),
        ("GET", P + "/segments", "get_segments"),
        ("POST", P + "/segments", "post_segment"),
        ("POST", P + r"/segments/(?P<seg>\d+)", "post_segment_members"),
        ("GET", P + r"/segments/(?P<seg>\d+)/members", "get_segment_members"),
        ("PUT", P + r"/members/(?P<hash>[0-9a-f]{32})", "put_member"),
        ("POST", P + r"/members/(?P<hash>[0-9a-f]{32})/actions/delete-permanent", "delete_permanent"),
        ("GET", P + "/members", "get_members"),
        ("POST", r"/3\.0/batches", "post_batch"),
        ("GET", r"/3\.0/batches/(?P<batch>[^/]+)", "get_batch"),
        ("GET", r"/files/batches/(?P<batch>[^/]+)\.tar\.gz", "get_batch_file"),
    ]

    def __init__(self, api_key: str = "0123456789abcdef-us21", list_id: str = "aud1"):
        super().__init__()
        self.api_key, self.list_id = api_key, list_id
        self.members: dict[str, dict] = {}  # subscriber hash -> member
        # The fields a new audience has (Mailchimp: FNAME, LNAME, ADDRESS, PHONE).
        self.merge_fields: dict[str, str] = {"FNAME": "First name", "LNAME": "Last name",
                                             "ADDRESS": "Address", "PHONE": "Phone"}
        self.segments: dict[int, dict] = {}
        self.status_change_attempts: list[tuple[str, str, str]] = []  # (email, from, to)
        self.batches: dict[str, dict] = {}
        self._ids = itertools.count(1001)

    # --- helpers for tests ------------------------------------------------------------
    def segment_emails(self, name: str) -> set[str]:
        for s in self.segments.values():
            if s["name"] == name:
                return {self.members[h]["email_address"] for h in s["members"] if h in self.members}
        return set()

    def unsubscribe(self, email: str, status: str = "unsubscribed") -> None:
        """What a person clicking "unsubscribe" (or a hard bounce: `cleaned`) does."""
        self.members[hashlib.md5(email.lower().encode()).hexdigest()]["status"] = status

    def seed_unsubscribed(self, email: str) -> None:
        """A member who unsubscribed before our first sync."""
        self.members[hashlib.md5(email.lower().encode()).hexdigest()] = {
            "email_address": email.lower(), "status": "unsubscribed", "merge_fields": {}}

    def still_unsubscribed(self, email: str) -> bool:
        return self.status_of(email) == "unsubscribed"

    def status_of(self, email: str) -> str:
        return self.members[hashlib.md5(email.lower().encode()).hexdigest()]["status"]

    def fields_of(self, email: str) -> dict:
        return self.members[hashlib.md5(email.lower().encode()).hexdigest()]["merge_fields"]

    # --- protocol ---------------------------------------------------------------------
    def authorized(self, headers) -> bool:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return False
        _, _, key = base64.b64decode(auth[6:]).decode().partition(":")
        return key == self.api_key

    def _list_ok(self, m):
        return m["list"] == self.list_id

    def _missing(self):
        return 404, {"title": "Resource Not Found", "status": 404}, {}

    def get_merge_fields(self, m, req):
        if not self._list_ok(m):
            return self._missing()
        fields = [{"tag": t, "name": n, "type": "text"} for t, n in self.merge_fields.items()]
        return 200, {"merge_fields": fields, "total_items": len(fields)}, {}

    def post_merge_field(self, m, req):
        tag = req.body.get("tag", "")
        if not re.fullmatch(r"[A-Z0-9_]{1,10}", tag) or tag == "EMAIL":
            return 400, {"title": "Invalid Resource",
                         "detail": f"The tag {tag!r} is invalid: 1-10 of A-Z, 0-9, _"}, {}
        if tag in self.merge_fields:
            return 400, {"title": "Invalid Resource",
                         "detail": f"A Merge Field with the tag \"{tag}\" already exists "
                                   "for this list."}, {}
        if len(self.merge_fields) >= MAX_MERGE_FIELDS:
            return 400, {"title": "Invalid Resource",
                         "detail": f"this audience has the maximum of {MAX_MERGE_FIELDS} "
                                   "merge fields"}, {}
        self.merge_fields[tag] = req.body.get("name", tag)
        return 200, {"tag": tag, "name": req.body.get("name"), "type": "text"}, {}

    def get_segments(self, m, req):
        segs = [{"id": i, "name": s["name"], "type": "static", "member_count": len(s["members"])}
                for i, s in self.segments.items()]
        offset = int(req.query.get("offset", ["0"])[0])
        count = int(req.query.get("count", ["10"])[0])
        return 200, {"segments": segs[offset:offset + count], "total_items": len(segs)}, {}

    def post_segment(self, m, req):
        seg_id = next(self._ids)
        self.segments[seg_id] = {"name": req.body["name"], "members": set()}
        return 200, {"id": seg_id, "name": req.body["name"], "type": "static"}, {}

    def post_segment_members(self, m, req):
        seg = self.segments.get(int(m["seg"]))
        if seg is None:
            return self._missing()
        add = req.body.get("members_to_add", [])
        remove = req.body.get("members_to_remove", [])
        if len(add) > 500 or len(remove) > 500:
            return 400, {"title": "Invalid Resource", "detail": "max 500 emails"}, {}
        errors, added, removed = [], [], []
        for email in add:
            h = hashlib.md5(email.lower().encode()).hexdigest()
            if h not in self.members:
                errors.append({"email_addresses": [email], "error": "not a list member"})
            else:
                seg["members"].add(h)
                added.append({"email_address": email})
        for email in remove:
            h = hashlib.md5(email.lower().encode()).hexdigest()
            if h in seg["members"]:
                seg["members"].discard(h)
                removed.append({"email_address": email})
        return 200, {"members_added": added, "members_removed": removed, "errors": errors,
                     "total_added": len(added), "total_removed": len(removed),
                     "error_count": len(errors)}, {}

    def segment_names(self) -> list[str]:
        return [s["name"] for s in self.segments.values()]

    def get_members(self, m, req):
        if not self._list_ok(m):
            return self._missing()
        status = req.query.get("status", [None])[0]
        found = sorted((v for v in self.members.values()
                        if status is None or v["status"] == status),
                       key=lambda v: v["email_address"])
        offset = int(req.query.get("offset", ["0"])[0])
        count = min(int(req.query.get("count", ["10"])[0]), 1000)
        page = [{"email_address": v["email_address"], "status": v["status"],
                 "last_changed": v.get("last_changed", "2026-01-01T00:00:00+00:00")}
                for v in found[offset:offset + count]]
        return 200, {"members": page, "total_items": len(found)}, {}

    def get_segment_members(self, m, req):
        seg = self.segments.get(int(m["seg"]))
        if seg is None:
            return self._missing()
        emails = sorted(self.members[h]["email_address"] for h in seg["members"])
        offset = int(req.query.get("offset", ["0"])[0])
        count = min(int(req.query.get("count", ["10"])[0]), 1000)
        page = [{"email_address": e} for e in emails[offset:offset + count]]
        return 200, {"members": page, "total_items": len(emails)}, {}

    def put_member(self, m, req):
        """Add or update one member. `status_if_new` applies only to a new member; `status`
        changes an existing one, which Mailchimp refuses for members in a compliance state
        (unsubscribed, cleaned) and which a sync must never ask for."""
        if not self._list_ok(m):
            return self._missing()
        body = req.body or {}
        email = body.get("email_address", "").lower()
        if hashlib.md5(email.encode()).hexdigest() != m["hash"]:
            return 400, {"title": "Invalid Resource", "detail": "hash does not match"}, {}
        unknown = set(body.get("merge_fields", {})) - set(self.merge_fields)
        if unknown or "@" not in email:
            return 400, {"title": "Invalid Resource",
                         "detail": f"unknown merge fields {sorted(unknown)}"}, {}
        if self.rejected(email):
            return 400, {"title": "Invalid Resource",
                         "detail": f"{email} looks fake or invalid, please enter a real email"}, {}
        member = self.members.get(m["hash"])
        if member is not None and body.get("status") and body["status"] != member["status"]:
            self.status_change_attempts.append((email, member["status"], body["status"]))
            if member["status"] in ("unsubscribed", "cleaned"):
                return 400, {"title": "Member In Compliance State",
                             "detail": f"{email} is in a compliance state due to unsubscribe, "
                                       "bounce, or compliance review and cannot be subscribed."}, {}
        if member is None:
            status = body.get("status") or body.get("status_if_new")
            if not status:
                return 400, {"title": "Invalid Resource", "detail": "status_if_new required"}, {}
            self.creates[email] += 1
            member = self.members[m["hash"]] = {"email_address": email, "status": status,
                                                "merge_fields": {}}
        elif body.get("status"):
            member["status"] = body["status"]
        self.upserts[email] += 1
        member["merge_fields"].update(body.get("merge_fields", {}))
        return 200, {"id": m["hash"], "email_address": email, "status": member["status"],
                     "merge_fields": member["merge_fields"]}, {}

    def post_batch(self, m, req):
        """Batch operations: applied at once here (Mailchimp queues them), results kept for
        the response archive. Operation paths are relative to /3.0."""
        results = []
        for op in req.body.get("operations", []):
            body = op.get("body") or ""
            sub = Request(op["method"], "/3.0" + op["path"], {}, req.headers,
                          json.loads(body) if body else None, body.encode())
            status, payload, _ = self._route(sub)
            results.append({"status_code": status, "operation_id": op.get("operation_id"),
                            "response": json.dumps(payload)})
        batch_id = f"b{next(self._ids)}"
        self.batches[batch_id] = {"results": results, "polls": 0}
        return 200, self._batch_doc(batch_id, "pending"), {}

    def _batch_doc(self, batch_id: str, status: str) -> dict:
        results = self.batches[batch_id]["results"]
        errored = sum(r["status_code"] >= 400 for r in results)
        doc = {"id": batch_id, "status": status, "total_operations": len(results),
               "finished_operations": len(results) if status == "finished" else 0,
               "errored_operations": errored if status == "finished" else 0,
               "response_body_url": ""}
        if status == "finished":
            doc["response_body_url"] = f"{self.url}/files/batches/{batch_id}.tar.gz"
        return doc

    def get_batch(self, m, req):
        batch = self.batches.get(m["batch"])
        if batch is None:
            return self._missing()
        batch["polls"] += 1
        return 200, self._batch_doc(m["batch"], "started" if batch["polls"] < 2
                                    else "finished"), {}

    def get_batch_file(self, m, req):
        data = json.dumps(self.batches[m["batch"]]["results"]).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo(f"{m['batch']}/0.json")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        return 200, buffer.getvalue(), {}

    def delete_permanent(self, m, req):
        h = m["hash"]
        if h not in self.members:
            return self._missing()
        del self.members[h]
        for seg in self.segments.values():
            seg["members"].discard(h)
        return 204, None, {}
