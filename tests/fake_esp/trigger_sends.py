"""Fake send endpoints the trigger senders call, with the real APIs' documented behaviour.

- Klaviyo `POST /api/events/` (202): "If the unique_id is repeated for the same profile and
  metric, only the first processed event will be recorded" (Create Event reference).
- SendGrid `POST /v3/mail/send` (202): every accepted call is one email; no idempotency key.
"""

from __future__ import annotations

from .server import FakeEsp


class FakeKlaviyoEvents(FakeEsp):
    routes = [("POST", r"/api/events", "post_event")]

    def __init__(self, api_key: str = "pk_fake_events"):
        super().__init__()
        self.api_key = api_key
        self.recorded: dict[tuple[str, str, str], dict] = {}  # (email, metric, unique_id)
        self.posts = 0

    def authorized(self, headers) -> bool:
        return headers.get("Authorization") == f"Klaviyo-API-Key {self.api_key}" \
            and bool(headers.get("revision"))

    def post_event(self, m, req):
        attrs = (req.body or {}).get("data", {}).get("attributes", {})
        try:
            email = attrs["profile"]["data"]["attributes"]["email"]
            metric = attrs["metric"]["data"]["attributes"]["name"]
        except (KeyError, TypeError):
            return 400, {"errors": [{"detail": "profile email and metric name are required"}]}, {}
        if len(metric) >= 128:
            return 400, {"errors": [{"detail": "metric name must be less than 128 characters"}]}, {}
        self.posts += 1
        key = (email.lower(), metric, attrs.get("unique_id") or "")
        self.recorded.setdefault(key, attrs.get("properties", {}))
        return 202, None, {}


class FakeSendGridMail(FakeEsp):
    routes = [("POST", r"/v3/mail/send", "post_mail")]

    def __init__(self, api_key: str = "SG.fake-mail"):
        super().__init__()
        self.api_key = api_key
        self.sent: list[dict] = []

    def authorized(self, headers) -> bool:
        return headers.get("Authorization") == f"Bearer {self.api_key}"

    def post_mail(self, m, req):
        body = req.body or {}
        if not body.get("template_id") or not body.get("personalizations"):
            return 400, {"errors": [{"message": "template_id and personalizations required"}]}, {}
        for p in body["personalizations"]:
            for to in p.get("to", []):
                self.sent.append({"email": to["email"], **p.get("dynamic_template_data", {})})
        return 202, None, {}
