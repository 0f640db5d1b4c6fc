"""Fake SendGrid Marketing Campaigns contacts API (lists, custom fields, async jobs,
suppressions).

Enforces what SendGrid documents: custom field names of A-Z/0-9/_ not starting with a digit,
unique case-insensitively and never a reserved field's name ("already exists" otherwise); a
contact may carry only reserved fields and known custom field ids; 30,000 contacts and
6 MB = 6,000,000 bytes per upsert. List names may repeat (a blindly retried create makes a
duplicate). Suppressions (unsubscribes, group unsubscribes, bounces, spam reports) are kept
apart from contacts, as at SendGrid, and no endpoint here lifts one.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid

from .server import FakeEsp

RESERVED = {"email", "first_name", "last_name", "alternate_emails", "address_line_1",
            "address_line_2", "city", "state_province_region", "postal_code", "country",
            "phone_number_id", "external_id", "anonymous_id"}
READ_ONLY = {"created_at", "updated_at", "contact_id", "last_clicked", "last_opened",
             "last_emailed", "lists", "segments", "automation_id", "unique_name"}
MAX_BYTES = 6_000_000
SUPPRESSION_KINDS = ("unsubscribes", "bounces", "spam_reports", "group")


class FakeSendGrid(FakeEsp):
    routes = [
        ("GET", r"/v3/marketing/lists", "get_lists"),
        ("POST", r"/v3/marketing/lists", "post_list"),
        ("DELETE", r"/v3/marketing/lists/(?P<list>[^/]+)/contacts", "delete_list_contacts"),
        ("GET", r"/v3/marketing/field_definitions", "get_fields"),
        ("POST", r"/v3/marketing/field_definitions", "post_field"),
        ("PUT", r"/v3/marketing/contacts", "put_contacts"),
        ("DELETE", r"/v3/marketing/contacts", "delete_contacts"),
        ("GET", r"/v3/marketing/contacts/imports/(?P<job>[^/]+)", "get_import"),
        ("POST", r"/v3/marketing/contacts/search/emails", "search_emails"),
        ("POST", r"/v3/marketing/contacts/exports", "post_export"),
        ("GET", r"/v3/marketing/contacts/exports/(?P<id>[^/]+)", "get_export"),
        ("GET", r"/files/errors/(?P<job>[^/]+)\.csv", "get_errors_file"),
        ("GET", r"/files/exports/(?P<id>[^/]+)\.csv", "get_export_file"),
        ("GET", r"/v3/suppression/(?P<kind>unsubscribes|bounces|spam_reports)", "get_suppressions"),
        ("GET", r"/v3/asm/suppressions", "get_group_suppressions"),
    ]

    def __init__(self, api_key: str = "SG.fake-key-0123456789"):
        super().__init__()
        self.api_key = api_key
        self.contacts: dict[str, dict] = {}  # email -> contact
        self.lists: dict[str, str] = {}  # id -> name
        self.fields: dict[str, str] = {}  # id -> name
        self.jobs: dict[str, dict] = {}
        self.exports: dict[str, dict] = {}
        self.suppressed: dict[str, list[dict]] = {k: [] for k in SUPPRESSION_KINDS}
        self._ids = itertools.count(1)

    # --- helpers for tests ------------------------------------------------------------
    def suppress(self, email: str, kind: str = "unsubscribes") -> None:
        """What an unsubscribe click, a bounce or a spam report does at SendGrid."""
        item = {"email": email.lower(), "created": int(time.time())}
        if kind == "group":
            item |= {"group_id": 7, "group_name": "Newsletter"}
        self.suppressed[kind].append(item)

    def seed_unsubscribed(self, email: str) -> None:
        """A contact who unsubscribed (globally) before our first sync."""
        self.contacts[email.lower()] = {"id": uuid.uuid4().hex, "email": email.lower(),
                                        "list_ids": set(), "custom_fields": {}}
        self.suppress(email, "unsubscribes")

    def still_unsubscribed(self, email: str) -> bool:
        return any(i["email"] == email.lower() for i in self.suppressed["unsubscribes"])

    def retry_hint(self) -> dict[str, str]:
        return {"X-RateLimit-Reset": str(int(time.time()) + 1)}  # SendGrid: epoch seconds

    def list_names(self) -> list[str]:
        return list(self.lists.values())

    def field_names(self) -> list[str]:
        return list(self.fields.values())

    def list_emails(self, name: str) -> set[str]:
        ids = [i for i, n in self.lists.items() if n == name]
        return {e for e, c in self.contacts.items() if ids and ids[0] in c["list_ids"]}

    def fields_of(self, email: str) -> dict:
        c = self.contacts[email]
        out = {k: c[k] for k in sorted(RESERVED - {"email"}) if k in c}
        out.update({self.fields[i]: v for i, v in c.get("custom_fields", {}).items()})
        return out

    # --- protocol ---------------------------------------------------------------------
    def authorized(self, headers) -> bool:
        return headers.get("Authorization") == f"Bearer {self.api_key}"

    def unauthorized(self):
        return 401, {"errors": [{"field": None, "message": "authorization required"}]}, {}

    def get_lists(self, m, req):
        return 200, {"result": [{"id": i, "name": n, "contact_count": len(self.list_emails(n))}
                                for i, n in self.lists.items()], "_metadata": {}}, {}

    def get_suppressions(self, m, req):
        return 200, self._slice(self.suppressed[m["kind"]], req), {}

    def get_group_suppressions(self, m, req):
        return 200, self._slice(self.suppressed["group"], req), {}

    @staticmethod
    def _slice(items, req):
        offset = int(req.query.get("offset", ["0"])[0])
        limit = min(int(req.query.get("limit", ["500"])[0]), 500)
        return items[offset:offset + limit]

    def post_list(self, m, req):
        list_id = str(uuid.UUID(int=next(self._ids)))
        self.lists[list_id] = req.body["name"]
        return 201, {"id": list_id, "name": req.body["name"], "contact_count": 0}, {}

    def get_fields(self, m, req):
        return 200, {"custom_fields": [{"id": i, "name": n, "field_type": "Text"}
                                       for i, n in self.fields.items()],
                     "reserved_fields": [{"id": r, "name": r} for r in sorted(RESERVED)]}, {}

    def post_field(self, m, req):
        name = req.body.get("name", "")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", name):
            return 400, {"errors": [{"field": "name", "message": "invalid field name"}]}, {}
        taken = {n.lower() for n in self.fields.values()} | RESERVED | READ_ONLY
        if name.lower() in taken:
            return 400, {"errors": [{"field": "name",
                                     "message": f"field name {name} already exists"}]}, {}
        field_id = f"e{next(self._ids)}_T"
        self.fields[field_id] = req.body["name"]
        return 200, {"id": field_id, "name": req.body["name"], "field_type": "Text"}, {}

    def _job(self, **results) -> str:
        job_id = uuid.uuid4().hex
        self.jobs[job_id] = {"polls": 0, "results": results}
        return job_id

    def put_contacts(self, m, req):
        contacts = req.body.get("contacts", [])
        if len(contacts) > 30_000 or len(req.raw) > MAX_BYTES:
            return 413, {"errors": [{"message": "request too large: 30,000 contacts or 6MB"}]}, {}
        for c in contacts:
            unknown = set(c) - RESERVED - {"custom_fields"}
            if unknown:
                return 400, {"errors": [{"field": sorted(unknown)[0],
                                         "message": "is not a reserved field"}]}, {}
        unknown_lists = set(req.body.get("list_ids", [])) - set(self.lists)
        if unknown_lists:
            return 404, {"errors": [{"message": "list not found"}]}, {}
        created = updated = 0
        errors = []
        for c in contacts:
            email = c.get("email", "").lower()
            bad_field = set(c.get("custom_fields", {})) - set(self.fields)
            if self.rejected(email) or bad_field or "@" not in email:
                errors.append((email, "invalid email or custom field"))
                continue
            self.upserts[email] += 1
            existing = self.contacts.get(email)
            if existing is None:
                self.creates[email] += 1
                created += 1
                existing = self.contacts[email] = {"id": uuid.uuid4().hex, "email": email,
                                                   "list_ids": set(), "custom_fields": {}}
            else:
                updated += 1
            existing.update({k: v for k, v in c.items() if k in RESERVED and k != "email"})
            existing["custom_fields"].update(c.get("custom_fields", {}))
            existing["list_ids"].update(req.body.get("list_ids", []))
        job_id = self._job(requested_count=len(contacts), created_count=created,
                           updated_count=updated, deleted_count=0, errored_count=len(errors))
        self.jobs[job_id]["errors"] = errors
        if errors:
            self.jobs[job_id]["results"]["errors_url"] = f"{self.url}/files/errors/{job_id}.csv"
        return 202, {"job_id": job_id}, {}

    def get_import(self, m, req):
        job = self.jobs.get(m["job"])
        if job is None:
            return 404, {"errors": [{"message": "job not found"}]}, {}
        job["polls"] += 1
        # Pending on the first poll, like a real queue, then done.
        status = "pending" if job["polls"] < 2 else (
            "errored" if job["results"].get("errored_count") else "completed")
        return 200, {"id": m["job"], "status": status, "job_type": "upsert",
                     "results": job["results"]}, {}

    def get_errors_file(self, m, req):
        job = self.jobs[m["job"]]
        lines = ["email,error"] + [f"{e},{msg}" for e, msg in job.get("errors", [])]
        return 200, "\n".join(lines) + "\n", {}

    def search_emails(self, m, req):
        emails = req.body.get("emails", [])
        if len(emails) > 100:
            return 400, {"errors": [{"message": "at most 100 emails"}]}, {}
        result = {}
        for e in emails:
            c = self.contacts.get(e.lower())
            result[e] = ({"contact": {"id": c["id"], "email": c["email"]}} if c
                         else {"error": "contact not found"})
        if not any("contact" in r for r in result.values()):
            return 404, {"errors": [{"message": "No contacts found"}]}, {}
        return 200, {"result": result}, {}

    def _ids_param(self, req, name):
        ids = [i for i in req.query.get(name, [""])[0].split(",") if i]
        return ids

    def delete_contacts(self, m, req):
        ids = set(self._ids_param(req, "ids"))
        if len(ids) > 100:
            return 400, {"errors": [{"message": "at most 100 ids"}]}, {}
        for email in [e for e, c in self.contacts.items() if c["id"] in ids]:
            del self.contacts[email]
        return 202, {"job_id": self._job(deleted_count=len(ids))}, {}

    def delete_list_contacts(self, m, req):
        ids = set(self._ids_param(req, "contact_ids"))
        if m["list"] not in self.lists:
            return 404, {"errors": [{"message": "list not found"}]}, {}
        for c in self.contacts.values():
            if c["id"] in ids:
                c["list_ids"].discard(m["list"])
        return 202, {"job_id": self._job(deleted_count=len(ids))}, {}

    def post_export(self, m, req):
        export_id = uuid.uuid4().hex
        emails = set()
        for list_id in req.body.get("list_ids", []):
            emails |= {e for e, c in self.contacts.items() if list_id in c["list_ids"]}
        self.exports[export_id] = {"emails": sorted(emails), "polls": 0}
        return 202, {"id": export_id}, {}

    def get_export(self, m, req):
        exp = self.exports[m["id"]]
        exp["polls"] += 1
        if exp["polls"] < 2:
            return 200, {"id": m["id"], "status": "pending"}, {}
        return 200, {"id": m["id"], "status": "ready",
                     "urls": [f"{self.url}/files/exports/{m['id']}.csv"]}, {}

    def get_export_file(self, m, req):
        return 200, "EMAIL\n" + "".join(f"{e}\n" for e in self.exports[m["id"]]["emails"]), {}
