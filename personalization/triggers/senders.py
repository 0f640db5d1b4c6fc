"""How a trigger email leaves: one small sender per ESP (docs/triggers.md).

A sender either completes (`send` returns), refuses for good (SyncError: recorded as
`failed`), or cannot tell whether the ESP applied the call (SendOutcomeUnknown). Senders
whose ESP deduplicates on our key (`idempotent = True`: Klaviyo's event `unique_id`, the
file drop's file name) are simply retried later; for the others a lost answer is recorded
as `failed: outcome_unknown` and never resent, so a person gets an email at most once.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personalization.config import Settings
from personalization.esp.credentials import resolve_credentials
from personalization.esp.http import EspHttpClient, RetryPolicy
from personalization.esp.mailchimp import base_url_for, subscriber_hash
from personalization.exceptions import ConfigError, SyncError


@dataclass(frozen=True)
class TriggerMessage:
    """One email a trigger starts."""

    trigger: str
    dedup_key: str
    unified_id: str
    email: str
    campaign: str
    template: str
    merge_fields: dict[str, Any]
    esp_options: dict[str, Any] = field(default_factory=dict)

    @property
    def key_hash(self) -> str:
        """The dedup key as an opaque id (it may hold ids we do not send out)."""
        return hashlib.sha256(self.dedup_key.encode()).hexdigest()[:40]


class Sender:
    name = "base"
    idempotent = False

    def send(self, message: TriggerMessage) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class FileDropSender(Sender):
    """Writes one JSON file per send into `<home>/esp_drop/triggers/<trigger>/`."""

    name = "file_drop"
    idempotent = True  # the file name is the key: a repeat rewrites the same file

    def __init__(self, settings: Settings):
        self.root = settings.home / "esp_drop" / "triggers"

    def send(self, message: TriggerMessage) -> None:
        folder = self.root / message.trigger
        folder.mkdir(parents=True, exist_ok=True)
        body = {"trigger": message.trigger, "campaign": message.campaign,
                "template": message.template, "email": message.email,
                "key": message.key_hash, "merge_fields": message.merge_fields}
        tmp = folder / f".{message.key_hash}.tmp"
        tmp.write_text(json.dumps(body, ensure_ascii=False, sort_keys=True, default=str))
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, folder / f"{message.key_hash}.json")


class _ApiSender(Sender):
    def __init__(self, settings: Settings, client: EspHttpClient):
        self.settings = settings
        self.client = client

    def close(self) -> None:
        self.client.close()


def _policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_retries=settings.esp_max_retries,
                       backoff_base=settings.esp_backoff_base_seconds,
                       backoff_max=settings.esp_backoff_max_seconds,
                       timeout=settings.esp_timeout_seconds, seed=settings.esp_retry_seed)


class KlaviyoSender(_ApiSender):
    """Creates a Klaviyo event (`POST /api/events/`) that starts a metric-triggered flow.

    Klaviyo records an event once per `unique_id`, so a replay after a lost answer is safe.
    """

    name = "klaviyo"
    idempotent = True

    def __init__(self, settings: Settings):
        creds = resolve_credentials("klaviyo")
        super().__init__(settings, EspHttpClient(
            creds.base_url or "https://a.klaviyo.com", policy=_policy(settings),
            headers={"Authorization": f"Klaviyo-API-Key {creds.api_key}",
                     "revision": "2024-10-15", "accept": "application/vnd.api+json"}))

    def send(self, message: TriggerMessage) -> None:
        metric = message.esp_options.get("metric", message.template)
        body = {"data": {"type": "event", "attributes": {
            "properties": {**message.merge_fields, "campaign": message.campaign},
            "unique_id": message.key_hash,
            "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
            "profile": {"data": {"type": "profile", "attributes": {"email": message.email}}},
        }}}
        self.client.request("POST", "/api/events/", endpoint="POST /api/events", records=1,
                            json=body, headers={"content-type": "application/vnd.api+json"})


class SendGridSender(_ApiSender):
    """Sends one dynamic-template email (`POST /v3/mail/send`): not idempotent."""

    name = "sendgrid"

    def __init__(self, settings: Settings):
        creds = resolve_credentials("sendgrid")
        super().__init__(settings, EspHttpClient(
            creds.base_url or "https://api.sendgrid.com", policy=_policy(settings),
            headers={"Authorization": f"Bearer {creds.api_key}"}))

    def send(self, message: TriggerMessage) -> None:
        options = message.esp_options
        if not options.get("template_id") or not options.get("from_email"):
            raise ConfigError(f"trigger {message.trigger}: esp.sendgrid needs template_id and "
                              "from_email")
        body = {
            "from": {"email": options["from_email"]},
            "template_id": options["template_id"],
            "personalizations": [{
                "to": [{"email": message.email}],
                "dynamic_template_data": message.merge_fields,
                "custom_args": {"trigger": message.trigger, "key": message.key_hash},
            }],
            "categories": [message.campaign[:255]],
        }
        if options.get("unsubscribe_group_id"):
            body["asm"] = {"group_id": int(options["unsubscribe_group_id"])}
        self.client.request("POST", "/v3/mail/send", endpoint="POST /v3/mail/send", records=1,
                            json=body, replay=False)


class MailchimpSender(_ApiSender):
    """Sets the member's merge fields, then starts a Customer Journey step for them.

    The merge-field update is idempotent; the journey trigger is not. Never touches the
    member's subscription status: a member not in the audience is a failed send.
    """

    name = "mailchimp"

    def __init__(self, settings: Settings):
        creds = resolve_credentials("mailchimp", need_list_id=True)
        self.list_id = creds.list_id
        super().__init__(settings, EspHttpClient(
            creds.base_url or base_url_for(creds.api_key), policy=_policy(settings),
            auth=("personalization", creds.api_key)))

    def send(self, message: TriggerMessage) -> None:
        options = message.esp_options
        journey, step = options.get("journey_id"), options.get("step_id")
        if journey is None or step is None:
            raise ConfigError(f"trigger {message.trigger}: esp.mailchimp needs journey_id and "
                              "step_id")
        member = subscriber_hash(message.email)
        fields = {k[:10]: ("" if v is None else str(v))
                  for k, v in message.merge_fields.items()}
        found = self.client.request(
            "PATCH", f"/3.0/lists/{self.list_id}/members/{member}",
            endpoint="PATCH /lists/{id}/members/{hash}", records=1,
            json={"merge_fields": fields}, ok_statuses=(404,))
        if found.status_code == 404:
            raise SyncError("member not in the Mailchimp audience")
        self.client.request(
            "POST", f"/3.0/customer-journeys/journeys/{journey}/steps/{step}/actions/trigger",
            endpoint="POST /customer-journeys/journeys/{id}/steps/{id}/actions/trigger",
            records=1, json={"email_address": message.email}, replay=False)


SENDERS: dict[str, type[Sender]] = {
    s.name: s for s in (FileDropSender, KlaviyoSender, SendGridSender, MailchimpSender)}


def make_sender(settings: Settings) -> Sender:
    """The sender for `settings.trigger_target`.

    Raises:
        ConfigError: unknown target.
        SyncError: missing credentials.
    """
    cls = SENDERS.get(settings.trigger_target)
    if cls is None:
        raise ConfigError(f"unknown trigger_target {settings.trigger_target!r}; "
                          f"known: {sorted(SENDERS)}")
    return cls(settings)


def options_for(esp: dict[str, Any], target: str) -> dict[str, Any]:
    """The rule's `esp.<target>` options (empty when the rule names none)."""
    return dict(esp.get(target) or {})


def drop_files(settings: Settings, trigger: str) -> list[Path]:
    """The file-drop sends of `trigger` (for tests and the demo)."""
    folder = settings.home / "esp_drop" / "triggers" / trigger
    return sorted(folder.glob("*.json")) if folder.is_dir() else []
