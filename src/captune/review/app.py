"""The review app: rater and admin pages and the JSON API over one study (FastAPI).

    captune review serve studies/tone --port 8000      # binds 127.0.0.1

Routes (every one but ``/login`` and ``POST /api/login`` needs a session cookie, else 401):

- ``GET /login``: the sign-in page; the invite link carries the token in the URL fragment
  (``/login#token=...``), which browsers never send to a server or in a Referer.
- ``POST /api/login`` ``{"token"}``: sets an HttpOnly, SameSite=Strict session cookie;
  returns ``{"rater", "role", "csrf"}``. ``POST /api/logout`` ends the session.
- ``GET /`` (rater page), ``GET /api/next``, ``POST /api/ratings``, ``POST /api/skip``,
  ``GET /images/{item_id}``: raters, each only over the items assigned to them.
- ``GET /admin``, ``GET /api/admin/summary``, ``GET /api/admin/export``: the admin only (403
  for a rater).

Every POST but the login needs the session's CSRF token in ``X-CSRF-Token``; bodies over
``MAX_BODY`` bytes get 413; a session sending more than ``rate`` requests a second (bursts of
``burst``) gets 429. Images are found by item id in the study's database; no path from the
request ever reaches the file system.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.exceptions import HTTPException as StarletteHTTPException

from captune.review.store import RatingError, Session, Study

COOKIE = "captune_review"
MAX_BODY = 64 * 1024
RATE, BURST = 20.0, 40.0
LOGIN_RATE, LOGIN_BURST = 2.0, 60.0  # per client address (a class behind one NAT signs in at once); tokens are 256-bit
API_PREFIXES = ("/api/", "/images/")


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=256)


class RatingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: str = Field(min_length=1, max_length=512)
    scores: dict[str, dict[str, StrictInt]]
    preferred: str | None = None
    comment: str = Field("", max_length=4000)


class SkipBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: str = Field(min_length=1, max_length=512)


class TokenBuckets:
    """Per-key token buckets: ``allow(key)`` is False once a key spends its burst faster than ``rate``/s."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        with self._lock:
            now = time.monotonic()
            tokens, last = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            ok = tokens >= 1.0
            self._state[key] = (tokens - 1.0 if ok else tokens, now)
            return ok


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 before the app reads it."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _too_large(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await _too_large(send)
            more = message.get("more_body", False)
        body = b"".join(chunks)

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


async def _too_large(send) -> None:
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"detail": "request body too large (limit 64 KiB)"}'})


def create_app(folder: str | Path, rate: float = RATE, burst: float = BURST) -> FastAPI:
    """The app for the study in ``folder``."""
    study = Study(folder)
    app = FastAPI(title=f"captune review: {study.name}", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.study = study
    app.state.buckets = TokenBuckets(rate, burst)
    app.state.logins = TokenBuckets(LOGIN_RATE, LOGIN_BURST)
    _add_handlers(app)
    _add_api(app, study)
    _add_pages(app, study)
    app.add_middleware(BodyLimit)
    return app


# ---- sessions ------------------------------------------------------------------------------
def current(request: Request) -> Session:
    """The request's session (401 without one, 429 over the rate limit)."""
    session_id = request.cookies.get(COOKIE)
    session = request.app.state.study.session(session_id) if session_id else None
    if session is None:
        raise HTTPException(401, "no session: open your invite link")
    if not request.app.state.buckets.allow(session_id):
        raise HTTPException(429, "too many requests: slow down", headers={"Retry-After": "1"})
    return session


def rater(session: Annotated[Session, Depends(current)]) -> Session:
    if session.role != "rater":
        raise HTTPException(403, "this is a rater's route; the admin rates nothing")
    return session


def admin(session: Annotated[Session, Depends(current)]) -> Session:
    if session.role != "admin":
        raise HTTPException(403, "admin only")
    return session


def csrf(request: Request, session: Annotated[Session, Depends(current)]) -> Session:
    sent = request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise HTTPException(403, "missing or wrong X-CSRF-Token header (the csrf value login returned)")
    return session


# ---- API -----------------------------------------------------------------------------------
def _add_api(app: FastAPI, study: Study) -> None:
    @app.post("/api/login")
    def login(body: LoginBody, request: Request) -> JSONResponse:
        if not app.state.logins.allow(request.client.host if request.client else "?"):
            raise HTTPException(429, "too many sign-in attempts: wait a minute", headers={"Retry-After": "60"})
        found = study.login(body.token)
        if found is None:
            raise HTTPException(401, "unknown token: check the invite link")
        session, session_id = found
        response = JSONResponse({"rater": session.rater, "role": session.role, "csrf": session.csrf})
        response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", path="/", max_age=7 * 24 * 3600)
        return response

    @app.post("/api/logout")
    def logout(request: Request, session: Annotated[Session, Depends(csrf)]) -> JSONResponse:
        study.logout(request.cookies[COOKIE])
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/api/next", response_model=None)
    def next_item(session: Annotated[Session, Depends(rater)]) -> dict[str, Any] | Response:
        item = study.next_item(session.rater_id)
        if item is None:
            return Response(status_code=204)
        return {**item, "image_url": f"/images/{quote(item['item_id'], safe='')}",
                "criteria": study.criteria, "pairwise": study.pairwise}

    @app.post("/api/ratings")
    def rate(body: RatingBody, session: Annotated[Session, Depends(rater)],
             _: Annotated[Session, Depends(csrf)]) -> dict[str, Any]:
        try:
            study.save_rating(session.rater_id, body.item_id, body.scores, body.preferred, body.comment)
        except KeyError:
            raise HTTPException(404, f"item {body.item_id!r} is not one of yours") from None
        except RatingError as e:
            raise HTTPException(422, [{"loc": ["body", *loc], "msg": msg, "type": "value_error"}
                                      for loc, msg in e.problems]) from None
        return {"ok": True, "item_id": body.item_id}

    @app.post("/api/skip")
    def skip(body: SkipBody, session: Annotated[Session, Depends(rater)],
             _: Annotated[Session, Depends(csrf)]) -> dict[str, Any]:
        if not study.skip(session.rater_id, body.item_id):
            raise HTTPException(404, f"item {body.item_id!r} is not one of yours")
        return {"ok": True}

    @app.get("/api/admin/summary")
    def summary(_: Annotated[Session, Depends(admin)], resamples: int = 1000) -> dict[str, Any]:
        return admin_summary(study, min(max(resamples, 1), 10_000))

    @app.get("/api/admin/export")
    def export(_: Annotated[Session, Depends(admin)]) -> Response:
        from captune.review.export import jsonl_text

        return Response(jsonl_text(study.export_rows()), media_type="application/x-ndjson",
                        headers={"Content-Disposition": f'attachment; filename="{study.name}-ratings.jsonl"'})

    @app.get("/images/{item_id:path}")
    def image(item_id: str, session: Annotated[Session, Depends(current)]) -> FileResponse:
        path = study.image_path(item_id, None if session.role == "admin" else session.rater_id)
        if path is None or not path.is_file():
            raise HTTPException(404, "no such item among yours")
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})


def admin_summary(study: Study, resamples: int = 1000) -> dict[str, Any]:
    """The admin page's figures: progress, means, agreement, Bradley-Terry."""
    from captune.review.agreement import summarize

    return {"study": study.name, "criteria": study.criteria, "pairwise": study.pairwise,
            "progress": study.progress(),
            **summarize(study.export_rows(), resamples, study.seed, study.systems(), study.criteria)}


# ---- pages ---------------------------------------------------------------------------------
def _templates():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("captune.review", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _page(name: str, code: int = 200, **ctx: Any) -> HTMLResponse:
    """A page with a fresh nonce: its CSP lets only its own inline script and style run."""
    nonce = secrets.token_urlsafe(16)
    html = _templates().get_template(name).render(nonce=nonce, **ctx)
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
           "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    return HTMLResponse(html, code, headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"})


def _add_pages(app: FastAPI, study: Study) -> None:
    @app.get("/login", response_class=HTMLResponse)
    def login_page() -> HTMLResponse:
        return _page("login.html", study=study.name)

    @app.get("/", response_class=HTMLResponse)
    def rater_page(session: Annotated[Session, Depends(current)]) -> Response:
        if session.role == "admin":
            return RedirectResponse("/admin", 303)
        return _page("rate.html", study=study.name, rater=session.rater, csrf=session.csrf)

    @app.get("/admin", response_class=HTMLResponse)
    def admin_page(session: Annotated[Session, Depends(admin)]) -> HTMLResponse:
        return _page("admin.html", s=admin_summary(study, 1000), csrf=session.csrf)


def _add_handlers(app: FastAPI) -> None:
    """JSON errors on API routes, a short page elsewhere; headers every answer carries."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(API_PREFIXES) or exc.status_code == 422:
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        return _page("message.html", exc.status_code, status=exc.status_code, message=str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": fields}, 422)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
