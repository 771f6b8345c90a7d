"""One exception hierarchy with the HTTP status on the class, and the handlers that map it to JSON.

Body of every error: ``{"error": {"code": ..., "message": ..., "request_id": ...}}`` (422 adds
``fields``). An exception that is not a :class:`ServiceError` is logged with its traceback and answered
with a generic 500 that names nothing internal.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

log = logging.getLogger("prectr.service")


class ServiceError(Exception):
    """Base of every error the service answers on purpose."""

    status_code = 500
    code = "internal"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class BadRequest(ServiceError):
    status_code = 422
    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.fields = [{"field": field, "message": message}]

    def body(self) -> dict[str, Any]:
        return {**super().body(), "fields": self.fields}


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "missing or wrong bearer token") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class BundleRejected(ServiceError):
    """Hot reload refused a bundle; the message says why and the old bundle keeps serving."""

    status_code = 422
    code = "bundle_rejected"


class Overloaded(ServiceError):
    """Shed at admission: the queue is full or the deadline is predicted to pass."""

    status_code = 429
    code = "overloaded"

    def __init__(self, message: str, *, reason: str, retry_after_s: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after_s))
        super().__init__(message, headers={"Retry-After": str(self.retry_after)})
        self.reason = reason


class NotReady(ServiceError):
    status_code = 503
    code = "not_ready"

    def __init__(self, message: str = "the service is starting and not ready yet") -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class Draining(NotReady):
    code = "draining"

    def __init__(self, message: str = "the service is shutting down; retry on another instance") -> None:
        super().__init__(message)


class DeadlineExceeded(ServiceError):
    status_code = 504
    code = "deadline_exceeded"


class ClientDisconnected(ServiceError):
    """The client went away; nobody reads this answer (499 is the nginx convention)."""

    status_code = 499
    code = "client_disconnected"


class InternalError(ServiceError):
    status_code = 500
    code = "internal"


class BatchFailed(InternalError):
    """Inference failed for a whole batch; every request in it gets this."""

    code = "inference_failed"


def error_response(exc: ServiceError, request_id: str | None) -> Response:
    body = {"error": {**exc.body(), "request_id": request_id}}
    return Response(
        orjson.dumps(body), status_code=exc.status_code, headers=exc.headers, media_type="application/json"
    )


def internal_error_response(request_id: str | None) -> Response:
    return error_response(InternalError("internal error; the request id is in the server log"), request_id)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Map :class:`ServiceError` and request validation errors; unknown errors are the middleware's."""

    async def on_service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        return error_response(exc, getattr(request.state, "request_id", None))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        fields = [
            {"field": _loc(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")} for e in exc.errors()
        ]
        err = (
            BadRequest(fields[0]["field"], fields[0]["message"]) if fields else BadRequest("body", "invalid")
        )
        err.fields = fields or err.fields
        err.message = "; ".join(f"{f['field']}: {f['message']}" for f in err.fields)
        return error_response(err, getattr(request.state, "request_id", None))

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
