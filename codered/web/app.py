"""The web application: the review desk (HTML) and the JSON API, on one FastAPI app.

``create_app`` needs only the settings, the database and a way to wake the
outbox worker; the service passes its own, tests their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from codered import audit
from codered.db.engine import Database
from codered.settings import Settings
from codered.web import admin, api, health, manager, pages
from codered.web.auth import Guard, LoginThrottle, SignInRequiredError
from codered.web.render import page

__all__ = ["PAGE_CSP", "create_app"]

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


def create_app(
    settings: Settings, db: Database, *, on_outbox: Callable[[], None] = lambda: None
) -> FastAPI:
    app = FastAPI(
        title="codered",
        description="The review desk and JSON API of codered. Authenticate API calls with "
        "`Authorization: Bearer <token>` (`codered tokens create --user NAME`).",
        version="0.1.0",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.guard = Guard(db, settings.web)
    app.state.throttle = LoginThrottle(settings.web.login_attempts_per_15_minutes)
    app.state.on_outbox = on_outbox

    async def audit_event(kind: str, data: dict[str, Any]) -> None:
        async with db.write() as session:
            await audit.append(session, kind, data, actor=str(data.get("user") or "anonymous"))

    app.state.audit_event = audit_event
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(manager.router)
    app.include_router(api.router)
    _add_handlers(app)
    return app


_QUIET_PATHS = ("/api/", "/static/", "/mail/", "/healthz", "/readyz", "/metrics")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _add_handlers(app: FastAPI) -> None:
    @app.middleware("http")
    async def alert_banner(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Operational alerts (a mailbox that cannot sign in) on every page of the desk."""
        path = request.url.path
        request.state.alerts = []
        if request.method == "GET" and not path.startswith(_QUIET_PATHS):
            from codered.db.models import utcnow
            from codered.health import open_alerts

            async with request.app.state.guard.db.read() as session:
                request.state.alerts = await open_alerts(session, utcnow())
        return await call_next(request)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(SignInRequiredError)
    async def sign_in(request: Request, exc: SignInRequiredError) -> Response:
        if _wants_json(request):
            return JSONResponse(
                {"detail": "sign in: send Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        target = request.url.path if request.method == "GET" else "/"
        return RedirectResponse(f"/login?next={target}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        who = getattr(request.state, "user", None)
        return page(
            request, "error.html", who, status=exc.status_code, message=str(exc.detail), flash=""
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)
