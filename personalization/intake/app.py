"""`POST /events`: signed pixel events in, durable day files out (docs/triggers.md).

A request carries one event object or a JSON array of them. It is accepted only with
`X-Signature: sha256=<hex HMAC-SHA256 of the raw body>` under the secret of its source
(`X-Source`, default `default`). Answers: 202 when every event is stored (repeats of a
stored event_id count as stored), 422 naming each rejected event and its reason (the valid
ones of the batch are stored and the bad ones quarantined), 400 for a body that is not JSON,
401 for a bad signature, 413 for a body or batch over the limits, 503 with Retry-After when
too many requests are in flight.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from personalization.config import Settings
from personalization.exceptions import ConfigError
from personalization.intake.store import EventStore
from personalization.intake.validate import check_event, minimised
from personalization.observability import log_event

logger = logging.getLogger(__name__)

DEFAULT_SOURCE = "default"


def _secrets(settings: Settings) -> dict[str, bytes]:
    secrets = {name: s.get_secret_value().encode()
               for name, s in settings.intake_source_secrets.items()}
    if settings.intake_secret is not None:
        secrets.setdefault(DEFAULT_SOURCE, settings.intake_secret.get_secret_value().encode())
    if not secrets or not all(secrets.values()):
        raise ConfigError("the intake needs a secret: set PERSONALIZATION_INTAKE_SECRET "
                          "(or intake_source_secrets in the settings file)")
    return secrets


def signature(secret: bytes, body: bytes) -> str:
    """The `X-Signature` header value a sender must send for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _error(status: int, reason: str, **extra) -> JSONResponse:
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse({"error": reason, **extra}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it grows past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def create_app(settings: Settings, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The intake application (one process; several would each need their own day files)."""
    secrets = _secrets(settings)
    store = EventStore(settings.intake_dir)
    now = clock or (lambda: datetime.now(UTC))
    state = {"in_flight": 0}
    app = FastAPI(title="personalization intake", docs_url=None, redoc_url=None)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "in_flight": state["in_flight"]}

    @app.post("/events")
    async def post_events(request: Request):
        if state["in_flight"] >= settings.intake_max_in_flight:
            return _error(503, "busy: retry shortly")
        state["in_flight"] += 1
        try:
            return await _handle(request)
        finally:
            state["in_flight"] -= 1

    async def _handle(request: Request):
        body = await _read_body(request, settings.intake_max_body_bytes)
        if body is None:
            return _error(413, f"body larger than {settings.intake_max_body_bytes} bytes")
        source = request.headers.get("x-source", DEFAULT_SOURCE)
        secret = secrets.get(source)
        given = request.headers.get("x-signature", "")
        if secret is None or not hmac.compare_digest(given, signature(secret, body)):
            log_event(logger, "intake_unauthorised", logging.WARNING, source=source[:40])
            return _error(401, "missing or invalid X-Signature")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "body is not valid JSON")
        events = payload if isinstance(payload, list) else [payload]
        if len(events) > settings.intake_max_events_per_request:
            return _error(413, f"more than {settings.intake_max_events_per_request} events")
        ds = now().astimezone(UTC).date()
        clean, rejected, quarantined = [], [], []
        for index, event in enumerate(events):
            ok, reason = check_event(event, ds, settings.clock_skew_minutes)
            if ok is not None:
                clean.append(ok)
                continue
            event_id = event.get("event_id") if isinstance(event, dict) else None
            rejected.append({"index": index, "event_id": event_id, "reason": reason})
            quarantined.append({"source": source, "received_at": now().isoformat(),
                                "reason": reason, "raw": minimised(event)})
        written, duplicates = await run_in_threadpool(store.append, ds, clean, quarantined)
        result = {"accepted": len(clean), "written": written, "duplicates": duplicates}
        if rejected:
            log_event(logger, "intake_rejected", logging.WARNING, source=source,
                      rejected=len(rejected), accepted=len(clean),
                      reasons=sorted({r["reason"].split(":")[0] for r in rejected}))
            return JSONResponse({**result, "rejected": rejected}, status_code=422)
        return JSONResponse(result, status_code=202)

    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8100) -> None:
    """Run the intake with uvicorn until interrupted."""
    import uvicorn

    app = create_app(settings)
    log_event(logger, "intake_serving", host=host, port=port, intake_dir=str(settings.intake_dir))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
