"""A small real HTTP server (stdlib, threaded, on 127.0.0.1) with fault injection.

Subclasses declare routes `(method, regex, handler)`; a handler gets `(match, req)` and
returns `(status, json_body_or_None, extra_headers)`. Faults are armed per test:

- `status`: answer `status` (e.g. 429 with `Retry-After`, 500, 503) without applying;
- `slow`: apply, then wait `delay` seconds before answering (the client times out);
- `reset`: apply, then close the socket without any response (connection reset);
- per-record rejections: `reject(emails, times)` makes the ESP reject those records
  `times` times (-1 = always) with a per-record error.

Paths under `/files/` stand for pre-signed download URLs and need no credentials.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Fault:
    kind: str  # status | slow | reset
    method: str | None = None
    path: str = ".*"  # regex searched in the path
    times: int = 1
    skip: int = 0  # let this many matching requests through first
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: Any
    raw: bytes


class FakeEsp:
    """Base class: threading, auth check, faults, call log."""

    routes: list[tuple[str, str, str]] = []
    max_concurrent: int | None = None  # answer 429 beyond this many requests in flight

    def __init__(self):
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.rejections: dict[str, int] = {}
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status)
        self.write_calls = 0
        self.upserts: Counter[str] = Counter()  # email -> times upserted
        self.creates: Counter[str] = Counter()  # email -> times created
        self.in_flight = 0
        self.max_in_flight = 0
        self._compiled = [(m, re.compile(p + r"/?$"), h) for m, p, h in self.routes]
        self._httpd: ThreadingHTTPServer | None = None

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Buffer each response and send it in one write: headers and body written
            # separately hit Nagle + delayed ACK (40 ms per request on loopback).
            wbufsize = -1

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # --- test controls ----------------------------------------------------------------
    def add_fault(self, kind: str, **kwargs) -> Fault:
        fault = Fault(kind, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def arm_standard_faults(self, seed: int = 0, delay: float = 0.5) -> int:
        """The standard fault profile: on every endpoint (lists, fields, segments, jobs,
        upserts, lookups, downloads) one 429 with a retry hint, one 503, one reset after the
        request was applied (lost response) and one slow answer after applying (a client
        timeout when `delay` exceeds it), each spread over the endpoint's first calls by
        `seed`. Returns how many faults were armed."""
        rng = random.Random(seed)
        armed = 0
        for method, pattern, _ in self.routes:
            kinds = [("status", {"status": 429, "headers": self.retry_hint()}),
                     ("status", {"status": 503}), ("reset", {}), ("slow", {"delay": delay})]
            rng.shuffle(kinds)
            for kind, extra in kinds:
                self.add_fault(kind, method=method, path=f"^{pattern}/?$",
                               skip=rng.randint(0, 2), **extra)
                armed += 1
        return armed

    def retry_hint(self) -> dict[str, str]:
        """The header this ESP's 429 carries (seconds to wait)."""
        return {"Retry-After": "1"}

    def reject(self, emails, times: int = 1, ) -> None:
        with self.lock:
            for e in emails:
                self.rejections[e.lower()] = times

    def rejected(self, email: str) -> bool:
        """Consume one rejection for `email` (call while applying a record)."""
        with self.lock:
            left = self.rejections.get(email.lower(), 0)
            if left == 0:
                return False
            if left > 0:
                self.rejections[email.lower()] = left - 1
            return True

    # --- to implement -----------------------------------------------------------------
    def authorized(self, headers) -> bool:
        raise NotImplementedError

    def unauthorized(self) -> tuple[int, Any, dict]:
        return 401, {"detail": "invalid credentials"}, {}

    # --- serving ----------------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.times == 0 or (f.method and f.method != method) or not re.search(f.path, path):
                    continue
                if f.skip > 0:
                    f.skip -= 1
                    continue
                f.times -= 1
                return f
        return None

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        req = Request(h.command, split.path, parse_qs(split.query), h.headers, body, raw)
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            too_many = self.max_concurrent is not None and self.in_flight > self.max_concurrent
        try:
            if too_many:
                self._reply(h, req, 429, {"detail": "too many concurrent connections"}, {})
                return
            fault = self._take_fault(req.method, req.path)
            if fault and fault.kind == "status":
                self._reply(h, req, fault.status, {"detail": "injected"}, fault.headers)
                return
            if not req.path.startswith("/files/") and not self.authorized(req.headers):
                self._reply(h, req, *self.unauthorized())
                return
            status, payload, headers = self._route(req)
            if fault and fault.kind == "reset":
                with self.lock:
                    self.calls.append((req.method, req.path, -1))
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault and fault.kind == "slow":
                time.sleep(fault.delay)
            self._reply(h, req, status, payload, headers)
        except (BrokenPipeError, ConnectionResetError, OSError):
            h.close_connection = True
        finally:
            with self.lock:
                self.in_flight -= 1

    def _route(self, req: Request) -> tuple[int, Any, dict]:
        for method, pattern, handler in self._compiled:
            m = pattern.match(req.path)
            if m and method == req.method:
                with self.lock:
                    if method != "GET":
                        self.write_calls += 1
                    return getattr(self, handler)(m, req)
        return 404, {"detail": f"no route {req.method} {req.path}"}, {}

    def _reply(self, h, req: Request, status: int, payload: Any, headers: dict) -> None:
        with self.lock:
            self.calls.append((req.method, req.path, status))
        if isinstance(payload, bytes | str):
            data = payload.encode() if isinstance(payload, str) else payload
            ctype = "text/csv"
        else:
            data = json.dumps(payload).encode() if payload is not None else b""
            ctype = "application/json"
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()
