"""How errors become answers: the engine's exceptions as status codes, and FastAPI's
own errors as one JSON ``detail`` sentence a person can act on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from recommender.core import EmptyQueryError, InvalidNctIdError, UnknownFacetValueError
from recommender.index import DamagedIndexError, NotInIndexError


def add_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    def status(code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=code)

        return handler

    app.add_exception_handler(InvalidNctIdError, status(422))
    app.add_exception_handler(UnknownFacetValueError, status(422))
    app.add_exception_handler(EmptyQueryError, status(422))
    app.add_exception_handler(NotInIndexError, status(404))
    # A record that fails to decode while serving: the index on disk is damaged.
    app.add_exception_handler(DamagedIndexError, status(503))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's list of failed checks, under a one-sentence ``detail``."""
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    sentences = [f"{_where(e['loc'])}: {e['msg']}" for e in errors[:5]]
    detail = "; ".join(sentences) or "invalid request"
    if _whole_body_refused(errors) and "json" not in request.headers.get("content-type", ""):
        # FastAPI reads a body as JSON only when it says so (`curl -d` sends a form).
        detail = "the body must be a JSON object sent with 'Content-Type: application/json'"
    return JSONResponse({"detail": detail, "errors": jsonable_encoder(errors)}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own errors, except that a body it can not decode is a 422, like bad JSON."""
    if exc.status_code == 400:  # FastAPI's "There was an error parsing the body"
        detail = "the request body could not be read as JSON text in UTF-8"
        return JSONResponse({"detail": detail}, status_code=422)
    return await http_exception_handler(request, exc)


def _whole_body_refused(errors: list[dict]) -> bool:
    return any(e["loc"] == ["body"] for e in errors)


def _where(loc: list) -> str:
    if not loc:
        return "request"
    place, *names = loc
    named = ".".join(str(n) for n in names)
    if place == "body":
        return f"body field {named}" if named else "body"
    return f"{place} parameter {named}" if named else str(place)
