"""Fake Mailchimp Marketing API v3: one audience, merge fields, static segments."""

from __future__ import annotations

import base64
import hashlib
import itertools

from .server import FakeEsp

P = r"/3\.0/lists/(?P<list>[^/]+)"


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
        ("POST", P, "batch_subscribe"),
    ]

    def __init__(self, api_key: str = "0123456789abcdef-us21", list_id: str = "aud1"):
        super().__init__()
        self.api_key, self.list_id = api_key, list_id
        self.members: dict[str, dict] = {}  # subscriber hash -> member
        self.merge_fields: dict[str, str] = {"FNAME": "First name", "LNAME": "Last name"}
        self.segments: dict[int, dict] = {}
        self.status_change_attempts: list[tuple[str, str, str]] = []  # (email, from, to)
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
        if not tag or len(tag) > 10:
            return 400, {"title": "Invalid Resource", "detail": "tag must be 1-10 chars"}, {}
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

    def delete_permanent(self, m, req):
        h = m["hash"]
        if h not in self.members:
            return self._missing()
        del self.members[h]
        for seg in self.segments.values():
            seg["members"].discard(h)
        return 204, None, {}

    def batch_subscribe(self, m, req):
        if not self._list_ok(m):
            return self._missing()
        members = req.body.get("members", [])
        if len(members) > 500:
            return 400, {"title": "Invalid Resource",
                         "detail": "You may only add up to 500 members per call"}, {}
        new, updated, errors = [], [], []
        for member in members:
            email = member.get("email_address", "")
            unknown = set(member.get("merge_fields", {})) - set(self.merge_fields)
            if self.rejected(email) or unknown or "@" not in email:
                errors.append({"email_address": email, "error": f"{email} looks fake or invalid",
                               "error_code": "ERROR_GENERIC"})
                continue
            h = hashlib.md5(email.lower().encode()).hexdigest()
            self.upserts[email.lower()] += 1
            if h in self.members:
                if not req.body.get("update_existing"):
                    errors.append({"email_address": email, "error": "already a list member"})
                    continue
                current = self.members[h]["status"]
                if member.get("status") and member["status"] != current:
                    self.status_change_attempts.append((email.lower(), current, member["status"]))
                    if current in ("unsubscribed", "cleaned"):
                        errors.append({"email_address": email, "error_code": "ERROR_GENERIC",
                                       "error": f"{email} is in a compliance state"})
                        continue
                    self.members[h]["status"] = member["status"]
                self.members[h]["merge_fields"].update(member.get("merge_fields", {}))
                updated.append({"email_address": email, "id": h})
            else:
                self.creates[email.lower()] += 1
                self.members[h] = {"email_address": email.lower(),
                                   "status": member.get("status"),
                                   "merge_fields": dict(member.get("merge_fields", {}))}
                new.append({"email_address": email, "id": h})
        return 200, {"new_members": new, "updated_members": updated, "errors": errors,
                     "total_created": len(new), "total_updated": len(updated),
                     "error_count": len(errors)}, {}
