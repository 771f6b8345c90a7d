"""JSON logs, the request-id / access-log / duration middleware, and the last-resort 500.

A pure ASGI middleware (not ``BaseHTTPMiddleware``: no extra task or body copy per request). It assigns
the request id (``X-Request-ID`` header, replaced by the body's ``request_id`` when the route sets one),
times the request for ``prectr_request_duration_seconds``, writes one JSON access-log line, and turns
any exception that escaped the handlers into a generic 500 whose body names nothing internal.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import internal_error_response
from service.metrics import ServiceMetrics

log = logging.getLogger("prectr.service")
access_log = logging.getLogger("prectr.access")
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})  # polled every few seconds: debug unless failing
_STD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, every ``extra=`` field, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _STD_ATTRS})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """``logging.config.dictConfig`` for uvicorn's ``log_config``: applied in every worker process too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "service.access_log.JsonFormatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error")},
    }


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["started"] = started
        state["request_id"] = _header(scope, b"x-request-id") or uuid.uuid4().hex
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", str(state["request_id"]).encode("latin-1", "replace")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error", extra={"request_id": state["request_id"], "path": scope.get("path")}
            )
            self.metrics.errors.labels("internal").inc()
            if not response_started:
                await internal_error_response(state["request_id"])(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")  # templates only: bounded label cardinality
            seconds = time.perf_counter() - started
            self.metrics.request_duration.labels(route_path, f"{status // 100}xx").observe(seconds)
            access_log.log(
                logging.DEBUG if route_path in _PROBES and status < 400 else logging.INFO,
                "request",
                extra={
                    "request_id": state["request_id"],
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")[:128] or None
    return None
