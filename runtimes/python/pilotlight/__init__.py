"""Pilotlight's Python SDK (standard library only): write a function with decorators or one plain
handler, get the invocation context and the platform's JSON logger, send scale hints, and test it
without a server (:mod:`pilotlight.testing`).

A complete function::

    from pilotlight import logger, post

    @post("/")
    def hello(request, context):
        name = request.header("name")
        logger.info("function is running", name=name)
        return f"hello {name}"

or, plainly::

    def handler(request, context):
        return {"path": request.path, "request_id": context.request_id}
"""

from . import hints
from ._http import Headers
from .context import FunctionInfo, InvocationContext, PreStopInfo, current_context
from .decorators import delete, get, head, initializer, options, patch, post, pre_stop, put, route, schedule
from .logging import Logger, get_logger, logger
from .web import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    GoneError,
    HTTPError,
    InternalServerError,
    MethodNotAllowedError,
    NotAcceptableError,
    NotFoundError,
    PayloadTooLargeError,
    Request,
    Response,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
    UnprocessableEntityError,
)

__version__ = "0.1.0"

__all__ = [
    "hints",
    "Headers",
    "FunctionInfo",
    "InvocationContext",
    "PreStopInfo",
    "current_context",
    "route",
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "head",
    "options",
    "initializer",
    "pre_stop",
    "schedule",
    "Logger",
    "get_logger",
    "logger",
    "Request",
    "Response",
    "HTTPError",
    "BadRequestError",
    "UnauthorizedError",
    "ForbiddenError",
    "NotFoundError",
    "MethodNotAllowedError",
    "NotAcceptableError",
    "ConflictError",
    "GoneError",
    "PayloadTooLargeError",
    "UnprocessableEntityError",
    "TooManyRequestsError",
    "InternalServerError",
    "ServiceUnavailableError",
]
