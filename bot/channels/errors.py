"""Every HTTP error is JSON: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# aiohttp's HTTP exceptions → our stable error codes.
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


def json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class ApiError(Exception):
    """Raised by handlers for a 4xx with a precise code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status
        self.code = code
        self.message = message


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON body; bad input never becomes a 500."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_error(exc.status_code, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status_code < 400:
            raise
        if exc.status_code == 413:
            return json_error(413, "payload_too_large", "the request body is larger than 64 KiB")
        code = _CODES.get(exc.status_code, "error")
        message = exc.reason if exc.status_code != 404 else f"no route for {request.path}"
        response = json_error(exc.status_code, code, message)
        if exc.status_code == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return json_error(500, "internal", "something went wrong on our side; nothing was lost")
