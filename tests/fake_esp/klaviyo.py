"""Fake Klaviyo API: lists, profiles, bulk import jobs, data-privacy deletions (JSON:API).

Enforces what Klaviyo documents: 10,000 profiles and 5 MB = 5,000,000 bytes per import job,
one list per job, no `$` property keys, and imports that never touch consent or
suppression. List names may repeat (a blindly retried create makes a duplicate).
"""

from __future__ import annotations

import itertools
import json
import re

from .server import FakeEsp


class FakeKlaviyo(FakeEsp):
    routes = [
        ("GET", r"/api/lists", "get_lists"),
        ("POST", r"/api/lists", "post_list"),
        ("GET", r"/api/lists/(?P<list>[^/]+)/profiles", "get_list_profiles"),
        ("DELETE", r"/api/lists/(?P<list>[^/]+)/relationships/profiles", "delete_list_profiles"),
        ("POST", r"/api/lists/(?P<list>[^/]+)/relationships/profiles", "post_list_profiles"),
        ("GET", r"/api/profiles", "get_profiles"),
        ("POST", r"/api/profile-bulk-import-jobs", "post_import"),
        ("GET", r"/api/profile-bulk-import-jobs/(?P<job>[^/]+)", "get_import"),
        ("GET", r"/api/profile-bulk-import-jobs/(?P<job>[^/]+)/import-errors", "get_import_errors"),
        ("POST", r"/api/data-privacy-deletion-jobs", "post_deletion"),
    ]

    def __init__(self, api_key: str = "pk_fake_0123456789abcdef"):
        super().__init__()
        self.api_key = api_key
        self.profiles: dict[str, dict] = {}  # email -> {"id", "attributes"}
        self.lists: dict[str, dict] = {}  # id -> {"name", "profiles": set(ids)}
        self.jobs: dict[str, dict] = {}
        self.deletion_requests: list[str] = []
        self._ids = itertools.count(1)

    # --- helpers for tests ------------------------------------------------------------
    def suppress(self, email: str, reason: str = "UNSUBSCRIBE") -> None:
        """An unsubscribe, bounce or complaint: the profile is suppressed for email."""
        prof = self.profiles[email.lower()]
        prof.setdefault("suppression", []).append(
            {"reason": reason, "timestamp": "2026-10-01T12:00:00+00:00"})

    def seed_unsubscribed(self, email: str) -> None:
        """A profile that unsubscribed before our first sync."""
        self.profiles[email.lower()] = {"id": self._id("P"), "attributes": {"email": email.lower()}}
        self.suppress(email)

    def still_unsubscribed(self, email: str) -> bool:
        return bool(self.profiles.get(email.lower(), {}).get("suppression"))

    def list_names(self) -> list[str]:
        return [v["name"] for v in self.lists.values()]

    def list_emails(self, name: str) -> set[str]:
        by_id = {p["id"]: e for e, p in self.profiles.items()}
        for lst in self.lists.values():
            if lst["name"] == name:
                return {by_id[i] for i in lst["profiles"] if i in by_id}
        return set()

    def fields_of(self, email: str) -> dict:
        a = self.profiles[email]["attributes"]
        out = {k: a[k] for k in ("first_name", "last_name") if k in a}
        for k, v in a.get("location", {}).items():
            out[k] = v
        out.update(a.get("properties", {}))
        return out

    # --- protocol ---------------------------------------------------------------------
    def authorized(self, headers) -> bool:
        return (headers.get("Authorization") == f"Klaviyo-API-Key {self.api_key}"
                and bool(headers.get("revision")))

    def unauthorized(self):
        return 401, {"errors": [{"status": 401, "code": "not_authenticated",
                                 "title": "Authentication credentials were not provided."}]}, {}

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def _page(self, items: list[dict], req, base: str):
        size = min(int(req.query.get("page[size]", ["20"])[0]), 100)
        start = int(req.query.get("page[cursor]", ["0"])[0])
        page = items[start:start + size]
        nxt = f"{self.url}{base}?page[size]={size}&page[cursor]={start + size}" if (
            start + size < len(items)) else None
        return 200, {"data": page, "links": {"self": base, "next": nxt}}, {}

    def get_lists(self, m, req):
        items = [{"type": "list", "id": i, "attributes": {"name": v["name"]}}
                 for i, v in self.lists.items()]
        return self._page(items, req, "/api/lists")

    def post_list(self, m, req):
        list_id = self._id("L")
        name = req.body["data"]["attributes"]["name"]
        self.lists[list_id] = {"name": name, "profiles": set()}
        return 201, {"data": {"type": "list", "id": list_id, "attributes": {"name": name}}}, {}

    def get_list_profiles(self, m, req):
        lst = self.lists.get(m["list"])
        if lst is None:
            return 404, {"errors": [{"status": 404, "title": "Not found"}]}, {}
        by_id = {p["id"]: e for e, p in self.profiles.items()}
        items = [{"type": "profile", "id": i, "attributes": {"email": by_id[i]}}
                 for i in sorted(lst["profiles"]) if i in by_id]
        return self._page(items, req, f"/api/lists/{m['list']}/profiles")

    def delete_list_profiles(self, m, req):
        lst = self.lists.get(m["list"])
        data = req.body.get("data", [])
        if lst is None:
            return 404, {"errors": [{"status": 404, "title": "Not found"}]}, {}
        if len(data) > 1000:
            return 400, {"errors": [{"status": 400, "title": "at most 1000 profiles"}]}, {}
        for d in data:
            lst["profiles"].discard(d["id"])
        return 204, None, {}

    def post_list_profiles(self, m, req):
        lst = self.lists.get(m["list"])
        data = req.body.get("data", [])
        if lst is None:
            return 404, {"errors": [{"status": 404, "title": "Not found"}]}, {}
        if len(data) > 1000:
            return 400, {"errors": [{"status": 400, "title": "at most 1000 profiles"}]}, {}
        known = {p["id"] for p in self.profiles.values()}
        lst["profiles"].update(d["id"] for d in data if d["id"] in known)
        return 204, None, {}

    def get_profiles(self, m, req):
        flt = req.query.get("filter", [""])[0]
        if flt.startswith("greater-than(subscriptions.email.marketing.suppression.timestamp,"):
            items = [{"type": "profile", "id": p["id"], "attributes": {
                "email": e, "subscriptions": {"email": {"marketing": {
                    "can_receive_email_marketing": False, "suppression": p["suppression"]}}}}}
                for e, p in sorted(self.profiles.items()) if p.get("suppression")]
            return self._page(items, req, "/api/profiles")
        match = re.fullmatch(r"any\(email,(\[.*\])\)", flt)
        if not match:
            return 400, {"errors": [{"status": 400, "title": "unsupported filter"}]}, {}
        wanted = [e.lower() for e in json.loads(match.group(1))]
        if len(wanted) > 100:
            return 400, {"errors": [{"status": 400, "title": "at most 100 values"}]}, {}
        items = [{"type": "profile", "id": self.profiles[e]["id"], "attributes": {"email": e}}
                 for e in wanted if e in self.profiles]
        return 200, {"data": items, "links": {"next": None}}, {}

    def post_import(self, m, req):
        if len(req.raw) > 5_000_000:
            return 413, {"errors": [{"status": 413, "title": "payload over 5MB"}]}, {}
        data = req.body["data"]
        profiles = data["attributes"]["profiles"]["data"]
        if len(profiles) > 10_000:
            return 400, {"errors": [{"status": 400, "title": "at most 10,000 profiles"}]}, {}
        list_ids = [d["id"] for d in data.get("relationships", {}).get("lists", {}).get("data", [])]
        if len(list_ids) > 1:
            return 400, {"errors": [{"status": 400, "title": "one list per import job"}]}, {}
        for p in profiles:
            attrs = p["attributes"]
            if "subscriptions" in attrs or any(k.startswith("$")
                                               for k in attrs.get("properties", {})):
                return 400, {"errors": [{"status": 400, "title": "Invalid profile attributes",
                                         "detail": "no subscriptions or $ properties"}]}, {}
        if any(i not in self.lists for i in list_ids):
            return 404, {"errors": [{"status": 404, "title": "list not found"}]}, {}
        errors = []
        for p in profiles:
            attrs = p["attributes"]
            email = attrs.get("email", "").lower()
            if self.rejected(email) or "@" not in email:
                errors.append({"type": "import-error", "id": self._id("E"), "attributes": {
                    "code": "invalid", "title": "Invalid profile",
                    "detail": f"{email} is not a valid email", "original_payload": attrs}})
                continue
            self.upserts[email] += 1
            prof = self.profiles.get(email)
            if prof is None:
                self.creates[email] += 1
                prof = self.profiles[email] = {"id": self._id("P"), "attributes": {"email": email}}
            merged = prof["attributes"]
            for k, v in attrs.items():
                if isinstance(v, dict):  # properties, location: merged key by key
                    merged.setdefault(k, {}).update(v)
                else:
                    merged[k] = v
            for i in list_ids:
                self.lists[i]["profiles"].add(prof["id"])
        job_id = self._id("J")
        self.jobs[job_id] = {"polls": 0, "total": len(profiles), "errors": errors}
        return 202, {"data": self._job_doc(job_id, "queued")}, {}

    def _job_doc(self, job_id: str, status: str) -> dict:
        job = self.jobs[job_id]
        return {"type": "profile-bulk-import-job", "id": job_id, "attributes": {
            "status": status, "total_count": job["total"],
            "completed_count": job["total"] - len(job["errors"]),
            "failed_count": len(job["errors"])}}

    def get_import(self, m, req):
        job = self.jobs.get(m["job"])
        if job is None:
            return 404, {"errors": [{"status": 404, "title": "Not found"}]}, {}
        job["polls"] += 1
        status = "processing" if job["polls"] < 2 else "complete"
        return 200, {"data": self._job_doc(m["job"], status)}, {}

    def get_import_errors(self, m, req):
        return self._page(self.jobs[m["job"]]["errors"], req,
                          f"/api/profile-bulk-import-jobs/{m['job']}/import-errors")

    def post_deletion(self, m, req):
        attrs = req.body["data"]["attributes"]["profile"]["data"]["attributes"]
        email = attrs.get("email", "").lower()
        self.deletion_requests.append(email)
        prof = self.profiles.pop(email, None)
        if prof:
            for lst in self.lists.values():
                lst["profiles"].discard(prof["id"])
        return 202, None, {}
