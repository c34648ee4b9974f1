"""What a function receives and returns: :class:`Request`, :class:`Response`, and
:class:`HTTPError` (with a subclass per common status) to answer with an error status."""

from __future__ import annotations

import json as _json
from typing import Any
from urllib.parse import parse_qs, unquote

from ._http import HeaderInput, Headers

__all__ = [
    "Request",
    "Response",
    "Headers",
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


class Request:
    """One HTTP request, its body read in full.

    ``path`` is percent-decoded; ``query`` maps each query parameter to its first value and
    ``query_params`` to all of them; ``params`` holds the values of a route's ``{placeholders}``.
    """

    __slots__ = ("method", "path", "raw_path", "query_string", "headers", "body", "params", "_query")

    def __init__(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        query_string: str = "",
        headers: HeaderInput = None,
        body: bytes = b"",
        params: dict[str, str] | None = None,
        raw_path: str | None = None,
    ) -> None:
        self.method = method.upper()
        self.path = path
        self.raw_path = raw_path if raw_path is not None else path
        self.query_string = query_string
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = bytes(body)
        self.params: dict[str, str] = dict(params or {})
        self._query: dict[str, list[str]] | None = None

    @classmethod
    def from_target(cls, method: str, target: str, headers: HeaderInput = None, body: bytes = b"") -> Request:
        """A request for ``target`` (path and query, as on the request line)."""
        raw_path, _, query = target.partition("?")
        if raw_path.startswith(("http://", "https://")):
            # Absolute form (a proxy's request line): keep the path only.
            after = raw_path.split("://", 1)[1]
            raw_path = "/" + after.split("/", 1)[1] if "/" in after else "/"
        return cls(method, unquote(raw_path) or "/", query_string=query, headers=headers, body=body, raw_path=raw_path)

    @property
    def query_params(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    @property
    def query(self) -> dict[str, str]:
        return {name: values[0] for name, values in self.query_params.items()}

    @property
    def url(self) -> str:
        """Path and query as the client sent them."""
        return f"{self.raw_path}?{self.query_string}" if self.query_string else self.raw_path

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        return self.headers.get(name, default)

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding, "replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        :raises BadRequestError: when it is not JSON (the caller gets a 400).
        """
        try:
            return _json.loads(self.body)
        except ValueError as error:
            raise BadRequestError(f"the request body is not valid JSON: {error}") from None
        except RecursionError:
            # Nested deeper than the parser's stack (``[[[[…``): the client's fault, like bad JSON.
            raise BadRequestError("the request body is not valid JSON: nested too deeply") from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


class Response:
    """A response with a status, a body and headers.

    ``body`` is mapped as a returned value is: str → text/plain, bytes → octet-stream,
    dict/list/number → JSON, an iterator or async iterator → streamed (chunked), None → empty.
    A ``content-type`` in ``headers`` wins over the one the body implies.
    """

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int = 200, body: Any = None, headers: HeaderInput = None) -> None:
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"Response(status, body, headers): status must be an int, got {status!r}")
        if not 200 <= status <= 599:
            # 1xx are interim responses: a client would wait on after one for the final answer.
            raise ValueError(f"Response status {status} is not a final HTTP status: use 200-599")
        self.status = status
        self.body = body
        self.headers = Headers(headers)

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


class HTTPError(Exception):
    """Raise to answer with ``status``: the body is ``{"name", "message"}`` (and ``errors`` when
    given, e.g. which fields failed validation) and ``headers`` are sent. A 5xx is answered like
    any other failure: logged with its traceback, its message kept out of the body unless
    ``PILOTLIGHT_DEBUG=true``.
    """

    status: int = 500
    default_message = "error"

    def __init__(
        self,
        status: int | None = None,
        message: str | None = None,
        *,
        errors: list[Any] | None = None,
        headers: HeaderInput = None,
    ) -> None:
        if status is not None:
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
                raise ValueError(f"HTTPError status must be 400-599, got {status!r}")
            self.status = status
        self.message = message if message is not None else self.default_message
        self.errors = errors
        self.headers = Headers(headers)
        super().__init__(self.message)

    @property
    def name(self) -> str:
        return type(self).__name__


class _StatusError(HTTPError):
    """An HTTPError whose status comes with the class: ``NotFoundError("no widget 42")``."""

    def __init__(self, message: str | None = None, *, errors: list[Any] | None = None, headers: HeaderInput = None) -> None:
        super().__init__(None, message, errors=errors, headers=headers)


class BadRequestError(_StatusError):
    status = 400
    default_message = "bad request"


class UnauthorizedError(_StatusError):
    status = 401
    default_message = "unauthorized"


class ForbiddenError(_StatusError):
    status = 403
    default_message = "forbidden"


class NotFoundError(_StatusError):
    status = 404
    default_message = "not found"


class MethodNotAllowedError(_StatusError):
    status = 405
    default_message = "method not allowed"


class NotAcceptableError(_StatusError):
    status = 406
    default_message = "not acceptable"


class ConflictError(_StatusError):
    status = 409
    default_message = "conflict"


class GoneError(_StatusError):
    status = 410
    default_message = "gone"


class PayloadTooLargeError(_StatusError):
    status = 413
    default_message = "payload too large"


class UnprocessableEntityError(_StatusError):
    status = 422
    default_message = "unprocessable entity"


class TooManyRequestsError(_StatusError):
    status = 429
    default_message = "too many requests"


class InternalServerError(_StatusError):
    status = 500
    default_message = "internal server error"


class ServiceUnavailableError(_StatusError):
    status = 503
    default_message = "service unavailable"
