"""The Instagram Graph API over plain httpx: every call has a timeout, every failure becomes a
``GraphError`` whose ``kind`` says what the publisher may do next.

The token travels in the ``Authorization`` header only, never in a URL (httpx logs URLs and puts
them in its exceptions), and any text that could carry it back (Graph's own error messages) is
scrubbed before it reaches a message. Images are checked with a separate client that sends no
token: the image host is not Meta.

Kinds: ``token`` (190: invalid or expired), ``cap`` (9: the publishing cap), ``rate_limited``
(4, 17, 32, 613 / 2207051: rate limited or blocked), ``media_fetch`` (9004 / 2207052),
``not_ready`` (9007 / 2207027: published before FINISHED), ``unreachable`` (no connection was made:
nothing was sent), ``ambiguous`` (timeout, connection dropped, 5xx: the request may have taken
effect) and ``rejected`` (any other refusal).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from captune.errors import CaptuneError

TOKEN_CODES = {190}
CAP_CODES = {9}
RATE_CODES = {4, 17, 32, 613}
RATE_SUBCODES = {2207051}
FETCH_CODES, FETCH_SUBCODES = {9004}, {2207052}
NOT_READY_CODES, NOT_READY_SUBCODES = {9007}, {2207027}
SAFE_TO_RETRY = {"unreachable", "ambiguous"}
"""Kinds a GET may retry (it changes nothing); POSTs are retried by the publisher, which knows when."""

ADVICE = {
    "token": "the access token was refused: it is invalid or expired. Create a new long-lived token "
             "(Graph API Explorer or your app's dashboard) and export it in ${env}",
    "cap": "the account's publishing cap is reached: rerun after the 24-hour window",
    "rate_limited": "Instagram rate limited or blocked the account: wait an hour, then rerun "
                    "(captune resumes each post where it stopped)",
    "media_fetch": "Instagram could not fetch the image: check that image_base_url serves OUT_DIR/posts/ publicly",
    "not_ready": "the container was not ready (published before FINISHED)",
    "unreachable": "the Graph API could not be reached: check the network and publisher.graph_url",
    "ambiguous": "no clear answer (timeout, dropped connection or server error); the request may have taken effect",
    "rejected": "the Graph API refused the request",
}


class GraphError(CaptuneError):
    """A failed Graph API call: ``kind`` (see the module docstring), the Graph ``code`` and ``subcode``."""

    def __init__(self, message: str, kind: str, code: int | None = None, subcode: int | None = None):
        super().__init__(message)
        self.kind, self.code, self.subcode = kind, code, subcode


def error_kind(code: int | None, subcode: int | None, http_status: int) -> str:
    """The kind of a Graph error body (``code``, ``error_subcode``) returned with ``http_status``."""
    if code in TOKEN_CODES:
        return "token"
    if code in CAP_CODES:
        return "cap"
    if code in RATE_CODES or subcode in RATE_SUBCODES:
        return "rate_limited"
    if code in FETCH_CODES or subcode in FETCH_SUBCODES:
        return "media_fetch"
    if code in NOT_READY_CODES or subcode in NOT_READY_SUBCODES:
        return "not_ready"
    return "ambiguous" if http_status >= 500 else "rejected"


class GraphClient:
    """``get`` and ``post`` against ``base_url`` (the Graph API with its version) with ``token``."""

    def __init__(self, base_url: str, token: str, timeout_s: float, backoff_s: float, token_env: str,
                 retries: int = 3, sleep: Callable[[float], None] = time.sleep):
        self._token, self._token_env = token, token_env
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s,
                                  headers={"Authorization": f"Bearer {token}"})
        self._images = httpx.Client(timeout=timeout_s, follow_redirects=True)
        """The image host is not Meta: this client sends no token."""
        self.backoff_s, self.retries, self.sleep = backoff_s, retries, sleep

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """GET, retried with doubling backoff on ``unreachable`` and ``ambiguous`` (reading changes nothing)."""
        attempt = 0
        while True:
            try:
                return self._call("GET", path, params=params)
            except GraphError as e:
                if e.kind not in SAFE_TO_RETRY or attempt == self.retries:
                    raise
            self.sleep(self.backoff_s * 2**attempt)
            attempt += 1

    def post(self, path: str, data: dict[str, str]) -> dict[str, Any]:
        """POST once (form body): whether to retry depends on what the call does."""
        return self._call("POST", path, data=data)

    def check_image(self, url: str) -> str | None:
        """HEAD ``url`` without credentials: None when it answers 200 with an image content type, else the problem."""
        try:
            response = self._images.head(url)
        except httpx.HTTPError as e:
            return f"{url} did not answer ({type(e).__name__})"
        kind = response.headers.get("content-type", "")
        if response.status_code != 200:
            return f"{url} answered HTTP {response.status_code}"
        if not kind.startswith("image/"):
            return f"{url} is served as {kind or 'no content type'}, not an image"
        return None

    def close(self) -> None:
        self._http.close()
        self._images.close()

    def _call(self, method: str, path: str, **kwargs) -> dict[str, Any]:
        where = f"{method} {path}"
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            raise self._error(where, "unreachable", type(e).__name__) from None
        except httpx.TransportError as e:
            raise self._error(where, "ambiguous", type(e).__name__) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict):
            return body
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code, subcode = error.get("code"), error.get("error_subcode")
        kind = error_kind(code, subcode, response.status_code)
        detail = f"HTTP {response.status_code}" + (f", Graph error {code}" if code is not None else "") + \
            (f"/{subcode}" if subcode is not None else "") + (f": {error['message']}" if error.get("message") else "")
        raise self._error(where, kind, detail, code, subcode)

    def _error(self, where: str, kind: str, detail: str, code: int | None = None,
               subcode: int | None = None) -> GraphError:
        advice = ADVICE[kind].replace("${env}", f"${self._token_env}")
        return GraphError(self.scrub(f"{where}: {detail}. {advice}"), kind, code, subcode)

    def scrub(self, text: str) -> str:
        """``text`` with the token, wherever it appears, replaced by ``[token]``."""
        return text.replace(self._token, "[token]") if self._token else text
