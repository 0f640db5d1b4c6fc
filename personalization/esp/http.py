"""The one HTTP client every ESP adapter uses: retries, backoff, rate limits, call log.

Retries 429, 5xx, timeouts and dropped connections with exponential backoff plus jitter
(seeded, so tests and reruns are reproducible) and honours `Retry-After` and
`X-RateLimit-Reset`. Every attempt is reported to a callback (the sync log) with its
endpoint, status, attempt number, duration and record count. Credentials are passed as
headers/auth and never logged: only the method and the path template are.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from personalization.exceptions import SendOutcomeUnknown, SyncError
from personalization.observability import log_event

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class TransientHttpError(SyncError):
    """Still failing after the last retry with a status or error worth retrying later
    (429, 5xx, timeout, dropped connection); the request may or may not have been applied.
    `retry_after` is the wait the server asked for, if it did."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one request."""

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    timeout: float = 30.0
    seed: int | None = None


@dataclass(frozen=True)
class CallRecord:
    """One HTTP attempt, as the sync log stores it."""

    endpoint: str
    status: int | None
    attempt: int
    seconds: float
    records: int
    error: str | None = None


class RateLimiter:
    """Spaces requests so at most `per_second` start each second (thread-safe)."""

    def __init__(self, per_second: float | None):
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (`Retry-After` or `X-RateLimit-Reset`), if any."""
    value = response.headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, parsed.timestamp() - time.time()) if parsed else None
    reset = response.headers.get("X-RateLimit-Reset")  # SendGrid: epoch seconds
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None


class EspHttpClient:
    """A small retrying JSON client bound to one ESP's base URL and credentials."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        policy: RetryPolicy = RetryPolicy(),
        on_call: Callable[[CallRecord], None] | None = None,
        max_connections: int = 10,
        rate_limits: dict[str, float] | None = None,
    ):
        self.policy = policy
        self._on_call = on_call or (lambda record: None)
        self._rng = random.Random(policy.seed)
        self._rng_lock = threading.Lock()
        self._limiters = {k: RateLimiter(v) for k, v in (rate_limits or {}).items()}
        self.sleeps: list[float] = []  # every backoff wait, for tests and the run summary
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers or {},
            auth=auth,
            timeout=policy.timeout,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
        )
        # For pre-signed download URLs (job error reports, exports): no credentials, so the
        # key never travels to another host.
        self._plain: httpx.Client | None = None  # created on first use (TLS setup is slow)

    def close(self) -> None:
        self._client.close()
        if self._plain is not None:
            self._plain.close()

    def _plain_client(self) -> httpx.Client:
        if self._plain is None:
            self._plain = httpx.Client(timeout=self.policy.timeout)
        return self._plain

    def backoff(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1` (the server's ask wins), recorded."""
        asked = _retry_after_seconds(response) if response is not None else None
        if asked is not None:
            wait = min(asked, self.policy.backoff_max)
        else:
            with self._rng_lock:
                jitter = self._rng.uniform(0.5, 1.0)  # "equal jitter": never less than half
            wait = min(self.policy.backoff_base * (2 ** (attempt - 1)) * jitter,
                       self.policy.backoff_max)
        self.sleeps.append(wait)
        return wait

    def request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        records: int = 0,
        ok_statuses: tuple[int, ...] = (),
        limiter: str | None = None,
        presigned: bool = False,
        retries: int | None = None,
        replay: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request, retrying transient failures.

        Args:
            method: HTTP method.
            path: Path below the base URL (may hold ids; never logged).
            endpoint: Path template for the log, e.g. `POST /lists/{id}`.
            records: How many records the request carries (for the log).
            ok_statuses: Extra non-2xx statuses the caller handles itself (e.g. 404).
            limiter: Name of the client-side rate limit to respect.
            presigned: `path` is an absolute pre-signed URL: send it without credentials.
            retries: Overrides the policy's retries (0 for creates, which are not
                idempotent: the caller looks up before trying again).
            replay: the request is idempotent, so a lost response may be retried. With False
                (an email send), only answers that say "not applied" (429, or no connection)
                are retried; a timeout, reset or 5xx raises SendOutcomeUnknown instead.
            **kwargs: Passed to `httpx.Client.request` (json, params, content, ...).

        Returns:
            The final response (2xx or one of `ok_statuses`).

        Raises:
            TransientHttpError: After the last retry of a retryable failure.
            SendOutcomeUnknown: `replay=False` and the answer was lost or a 5xx.
            SyncError: At once on a non-retryable 4xx.
        """
        attempts = (self.policy.max_retries if retries is None else retries) + 1
        for attempt in range(1, attempts + 1):
            if limiter in self._limiters:
                self._limiters[limiter].wait()
            start = time.perf_counter()
            response: httpx.Response | None = None
            error: str | None = None
            try:
                client = self._plain_client() if presigned else self._client
                response = client.request(method, path, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                # Timeouts and resets: the server may or may not have applied the
                # request. Idempotent writes (upserts, deletes) are replayed.
                error = type(e).__name__
                if not replay and not isinstance(e, httpx.ConnectError | httpx.ConnectTimeout):
                    self._on_call(CallRecord(endpoint, None, attempt,
                                             round(time.perf_counter() - start, 4), records, error))
                    raise SendOutcomeUnknown(f"{endpoint}: {error}; it may have been applied") from e
            seconds = round(time.perf_counter() - start, 4)
            status = response.status_code if response is not None else None
            self._on_call(CallRecord(endpoint, status, attempt, seconds, records, error))
            if response is not None and (response.is_success or status in ok_statuses):
                return response
            retryable = response is None or status in RETRY_STATUSES
            if not replay and response is not None and status != 429 and retryable:
                raise SendOutcomeUnknown(f"{endpoint} answered {status}; it may have been applied")
            if not retryable:
                raise SyncError(f"{endpoint} answered {status}: {_short_body(response)}")
            if attempt == attempts:
                break
            wait = self.backoff(attempt, response)
            log_event(logger, "esp_http_retry", logging.WARNING, endpoint=endpoint,
                      status=status, error=error, attempt=attempt, wait_seconds=round(wait, 3))
            time.sleep(wait)
        raise TransientHttpError(f"{endpoint} failed after {attempts} attempts "
                                 f"(last: {status or error})",
                                 _retry_after_seconds(response) if response is not None else None)


def _short_body(response: httpx.Response | None, limit: int = 300) -> str:
    if response is None:
        return ""
    text = response.text.replace("\n", " ")
    return text[:limit]
