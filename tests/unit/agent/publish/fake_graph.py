"""A fake Instagram Graph API on 127.0.0.1 (the standard library's ``http.server`` in a thread)
that records every request and can be told to misbehave; it also serves OUT_DIR/posts/ as the
image host (``image_base_url``).

Faults, per endpoint (``quota``, ``create``, ``status``, ``publish``): queue one-shot
faults in ``fake.faults[endpoint]`` or set ``fake.chooser(endpoint) -> fault | None``:

- ``500``: HTTP 500 (Graph code 2), nothing done;
- ``500_after``, ``timeout_after``, ``drop_after``: the request takes effect, then the answer is a
  500, arrives after ``stall_s`` (past the client's timeout), or the connection is closed unanswered;
- a callable: the request takes effect, the callable runs (e.g. kills the client), the connection
  is closed unanswered;
- ``rate_limit`` (code 4 / 2207051), ``token`` (190), ``media_fetch`` (9004 / 2207052, create),
  ``not_ready`` (9007 / 2207027, publish), ``cap`` (9, publish): refused, nothing done.

Containers answer ``IN_PROGRESS`` for ``finish_after_polls`` status reads (or ``chooser("polls")``),
then their final status: ``FINISHED``, or ``final_status[image_url]`` / ``chooser("final")``
(``ERROR`` / ``EXPIRED``). Publishing counts against ``quota_total``; a container already
``PUBLISHED`` is refused and counted in ``republish_attempts``. A wrong token gets 190 with the
token echoed in the message (what the publisher must scrub).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

VERSION = "v23.0"
USER = "17841400000000001"


@dataclass
class Request:
    method: str
    path: str
    """Without the version prefix: /{user}/media, /{container_id}, /images/..."""
    params: dict[str, str]
    authorization: str | None
    """``ok``, ``wrong`` or None (no Authorization header); the token itself is never kept."""


@dataclass
class Container:
    id: str
    params: dict[str, str]
    final: str = "FINISHED"
    polls_left: int = 0
    published: bool = False
    children: list[str] = field(default_factory=list)

    @property
    def status_code(self) -> str:
        if self.published:
            return "PUBLISHED"
        return "IN_PROGRESS" if self.polls_left > 0 else self.final


@dataclass
class Published:
    media_id: str
    container_id: str
    caption: str
    image_urls: list[str]


class FakeGraph:
    """``with FakeGraph(token, posts_dir) as fake:`` — ``fake.graph_url``, ``fake.image_base_url``."""

    def __init__(self, token: str, posts_dir: Path, quota_total: int = 10_000):
        self.token, self.posts_dir = token, Path(posts_dir)
        self.quota_total, self.quota_usage = quota_total, 0
        self.finish_after_polls = 0
        self.final_status: dict[str, str] = {}
        self.faults: dict[str, list[str]] = {}
        self.chooser: Callable[[str], object] | None = None
        self.stall_s = 1.0
        self.missing_images: set[str] = set()
        self.requests: list[Request] = []
        self.containers: dict[str, Container] = {}
        self.published: list[Published] = []
        self.republish_attempts = 0
        self.lock = threading.RLock()
        self._ids = 0
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def graph_url(self) -> str:
        return f"{self.base}/{VERSION}"

    @property
    def image_base_url(self) -> str:
        return f"{self.base}/images"

    def graph_requests(self) -> list[Request]:
        """Requests to the Graph API (the image host's left out)."""
        return [r for r in self.requests if not r.path.startswith("/images/")]

    def fault(self, endpoint: str):
        with self.lock:
            queued = self.faults.get(endpoint)
            if queued:
                return queued.pop(0)
        return self.chooser(endpoint) if self.chooser else None

    def new_id(self, prefix: str) -> str:
        with self.lock:
            self._ids += 1
            return f"{prefix}{self._ids:08d}"


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """Quiet about clients that hang up (the publisher closes connections it timed out on)."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _error(code: int, message: str, subcode: int | None = None, status: int = 400) -> tuple[int, dict]:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return status, {"error": error}


REFUSALS = {
    "500": lambda: _error(2, "Service temporarily unavailable", status=500),
    "rate_limit": lambda: _error(4, "Application request limit reached", 2207051),
    "token": lambda: _error(190, "Error validating access token: Session has expired"),
    "media_fetch": lambda: _error(9004, "Media download has failed.", 2207052),
    "not_ready": lambda: _error(9007, "Media ID is not available", 2207027),
    "cap": lambda: _error(9, "Application request limit reached", 2207042),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Graph API
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        fake: FakeGraph = self.server.fake
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query))
        if method == "POST":
            length = int(self.headers.get("content-length") or 0)
            params.update(parse_qsl(self.rfile.read(length).decode()))
        path = unquote(url.path)
        path = path[len(VERSION) + 1:] if path.startswith(f"/{VERSION}/") else path
        auth = self.headers.get("authorization")
        authorization = None if auth is None else ("ok" if auth == f"Bearer {fake.token}" else "wrong")
        with fake.lock:
            fake.requests.append(Request(method, path, params, authorization))
        if path.startswith("/images/"):
            return self._image(fake, path[len("/images/"):], method)
        if authorization != "ok":
            return self._send(*_error(190, f"Invalid OAuth access token - Cannot parse access token {auth}"))
        endpoint = _endpoint(method, path)
        fault = fake.fault(endpoint)
        if isinstance(fault, str) and fault in REFUSALS:
            return self._send(*REFUSALS[fault]())
        with fake.lock:
            status, body = _ROUTES[endpoint](fake, path, params)
        self._answer(fake, fault, status, body)

    def _answer(self, fake: FakeGraph, fault, status: int, body: dict) -> None:
        if fault == "500_after":
            return self._send(*REFUSALS["500"]())
        if fault == "drop_after" or callable(fault):
            if callable(fault):
                fault()
            self.close_connection = True
            return
        if fault == "timeout_after":
            time.sleep(fake.stall_s)
        self._send(status, body)

    def _image(self, fake: FakeGraph, relative: str, method: str) -> None:
        file = fake.posts_dir / relative
        if relative in fake.missing_images or not file.is_file():
            return self._send(404, {"error": "not found"}, body=method == "GET")
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method == "GET":
            self.wfile.write(data)

    def _send(self, status: int, payload: dict, body: bool = True) -> None:
        """Answer ``payload`` as JSON (headers only when ``body`` is false: the answer to a HEAD)."""
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _endpoint(method: str, path: str) -> str:
    parts = path.strip("/").split("/")
    if method == "GET" and len(parts) == 2 and parts[1] == "content_publishing_limit":
        return "quota"
    if method == "POST" and len(parts) == 2 and parts[1] in ("media", "media_publish"):
        return "create" if parts[1] == "media" else "publish"
    if method == "GET" and len(parts) == 1:
        return "status"
    return "unknown"


def _quota(fake: FakeGraph, path: str, params: dict) -> tuple[int, dict]:
    return 200, {"data": [{"config": {"quota_total": fake.quota_total, "quota_duration": 86400},
                           "quota_usage": fake.quota_usage}]}


def _create(fake: FakeGraph, path: str, params: dict) -> tuple[int, dict]:
    container = Container(fake.new_id("1780"), dict(params))
    if params.get("media_type") == "CAROUSEL":
        container.children = params.get("children", "").split(",")
        kids = [fake.containers.get(c) for c in container.children]
        if len(kids) < 2 or any(k is None or k.params.get("is_carousel_item") != "true" for k in kids):
            return _error(100, "Invalid parameter: children")
        bad = [k.final for k in kids if k.final != "FINISHED"]
        container.final = bad[0] if bad else "FINISHED"
    else:
        container.final = fake.final_status.get(params.get("image_url", ""), "FINISHED")
    chosen = fake.chooser("final") if fake.chooser else None
    container.final = chosen or container.final
    polls = fake.chooser("polls") if fake.chooser else None
    container.polls_left = fake.finish_after_polls if polls is None else polls
    fake.containers[container.id] = container
    return 200, {"id": container.id}


def _status(fake: FakeGraph, path: str, params: dict) -> tuple[int, dict]:
    container = fake.containers.get(path.strip("/"))
    if container is None:
        return _error(100, "Unsupported get request")
    if container.polls_left > 0 and not container.published:
        container.polls_left -= 1
        return 200, {"status_code": "IN_PROGRESS", "status": "In Progress", "id": container.id}
    text = {"ERROR": "Error: Media download has failed. (2207052)", "EXPIRED": "Expired"}.get(
        container.status_code, "Finished")
    return 200, {"status_code": container.status_code, "status": text, "id": container.id}


def _publish(fake: FakeGraph, path: str, params: dict) -> tuple[int, dict]:
    container = fake.containers.get(params.get("creation_id", ""))
    if container is None or container.params.get("is_carousel_item") == "true":
        return _error(100, "Invalid parameter: creation_id")
    if container.published:
        fake.republish_attempts += 1
        return _error(100, "The media has already been published")
    if container.status_code == "IN_PROGRESS":
        return _error(9007, "Media ID is not available", 2207027)
    if container.status_code != "FINISHED":
        return _error(100, f"The container is {container.status_code}")
    if fake.quota_usage >= fake.quota_total:
        return REFUSALS["cap"]()
    container.published = True
    fake.quota_usage += 1
    urls = [fake.containers[c].params["image_url"] for c in container.children] or [container.params["image_url"]]
    media = Published(fake.new_id("1790"), container.id, container.params.get("caption", ""), urls)
    fake.published.append(media)
    return 200, {"id": media.media_id}


_ROUTES = {"quota": _quota, "create": _create, "status": _status, "publish": _publish,
           "unknown": lambda fake, path, params: _error(100, f"Unknown path {path}")}
