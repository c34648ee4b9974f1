"""HTTP/1.1 message syntax for the runtime's Unix socket: parsing a request head, the framing of
its body, and serializing a response head. No I/O here; ``server.py`` drives it.

Only what the watchdog (undici) and well-behaved clients send is accepted; anything ambiguous
about where a message ends (both ``Content-Length`` and ``Transfer-Encoding``, two different
lengths, a transfer coding other than ``chunked``, obsolete line folding) is refused rather than
guessed, as RFC 9112 asks of a server that may sit behind a proxy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import Union

__all__ = [
    "Headers",
    "ProtocolError",
    "RequestHead",
    "parse_head",
    "parse_chunk_size",
    "response_head",
    "final_status",
    "check_response_header",
    "MAX_HEAD",
]

#: Longest request head (request line and headers) accepted; a longer one gets 431.
MAX_HEAD = 64 * 1024
#: Longest chunk-size line (with extensions) accepted in a chunked body.
MAX_CHUNK_LINE = 4096

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e\x80-\xff]+")
_FIELD_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

_REASONS = {status.value: status.phrase for status in HTTPStatus}


class ProtocolError(Exception):
    """A request that cannot be read; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


HeaderInput = Union["Headers", Mapping[str, str], Iterable[tuple[str, str]], None]


class Headers:
    """Case-insensitive HTTP headers that keep repeated fields (``set-cookie``) and their order.

    ``headers["content-type"]`` and ``headers.get("Content-Type")`` give the first value;
    ``get_all`` gives every value. Names are stored lower-case.
    """

    __slots__ = ("_items",)

    def __init__(self, items: HeaderInput = None) -> None:
        self._items: list[tuple[str, str]] = []
        if items is None:
            return
        if isinstance(items, Headers):
            self._items = list(items._items)
            return
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self.add(name, value)

    @classmethod
    def _trusted(cls, items: list[tuple[str, str]]) -> Headers:
        """Wraps pairs already lower-cased and checked (from the parser), without copying."""
        headers = cls.__new__(cls)
        headers._items = items
        return headers

    def add(self, name: str, value: object) -> None:
        """Appends a field, keeping any with the same name."""
        self._items.append((str(name).lower(), str(value)))

    def set(self, name: str, value: object) -> None:
        """Replaces every field named ``name`` with one."""
        key = str(name).lower()
        self._items = [item for item in self._items if item[0] != key]
        self._items.append((key, str(value)))

    def setdefault(self, name: str, value: object) -> str:
        """Adds the field unless one with that name exists; returns the value in effect."""
        current = self.get(name)
        if current is not None:
            return current
        self.add(name, value)
        return str(value)

    def remove(self, name: str) -> None:
        key = name.lower()
        self._items = [item for item in self._items if item[0] != key]

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower()
        for item_name, value in self._items:
            if item_name == key:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [value for item_name, value in self._items if item_name == key]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for name, _ in self._items:
            seen.setdefault(name, None)
        return list(seen)

    def to_dict(self) -> dict[str, str]:
        """One entry per name; repeated fields joined with ``, `` as HTTP allows."""
        out: dict[str, str] = {}
        for name, value in self._items:
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: object) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        self.remove(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self.to_dict() == {str(k).lower(): str(v) for k, v in other.items()}
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class RequestHead:
    """A parsed request line and header section, with what they say about the body and connection."""

    __slots__ = ("method", "target", "version", "headers", "content_length", "chunked", "keep_alive", "expect_continue")

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        headers: Headers,
        content_length: int,
        chunked: bool,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        #: Bytes of body announced by Content-Length (0 without one); unused when ``chunked``.
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue

    @property
    def has_body(self) -> bool:
        return self.chunked or self.content_length > 0


def parse_head(data: bytes) -> RequestHead:
    """Parses a request head: everything before the blank line, without the final CRLF CRLF.

    :raises ProtocolError: 400 for malformed syntax or ambiguous framing, 501 for a transfer
        coding other than chunked, 505 for an HTTP version other than 1.0 and 1.1, 417 for an
        ``Expect`` other than ``100-continue``.
    """
    lines = data.split(b"\r\n")
    request_line = lines[0]
    parts = request_line.split(b" ")
    if len(parts) != 3:
        raise ProtocolError(400, "malformed request line")
    method, target, version = parts
    if _TOKEN.fullmatch(method) is None:
        raise ProtocolError(400, "malformed method")
    if _TARGET.fullmatch(target) is None:
        raise ProtocolError(400, "malformed request target")
    if version == b"HTTP/1.1":
        http11 = True
    elif version == b"HTTP/1.0":
        http11 = False
    elif version.startswith(b"HTTP/"):
        raise ProtocolError(505, "only HTTP/1.0 and HTTP/1.1 are served")
    else:
        raise ProtocolError(400, "malformed HTTP version")

    items: list[tuple[str, str]] = []
    content_lengths: list[bytes] = []
    transfer_encodings: list[str] = []
    connection: list[str] = []
    expect: str | None = None
    for line in lines[1:]:
        if not line:
            raise ProtocolError(400, "empty line inside the header section")
        if line[0] in (0x20, 0x09):
            raise ProtocolError(400, "obsolete header line folding")
        name, sep, value = line.partition(b":")
        if not sep or _TOKEN.fullmatch(name) is None:
            raise ProtocolError(400, "malformed header field")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        if "\x00" in text or "\r" in text or "\n" in text:
            raise ProtocolError(400, "invalid character in a header value")
        items.append((key, text))
        if key == "content-length":
            content_lengths.extend(v.strip(b" \t") for v in value.split(b","))
        elif key == "transfer-encoding":
            transfer_encodings.extend(t.strip().lower() for t in text.split(",") if t.strip())
        elif key == "connection":
            connection.extend(t.strip().lower() for t in text.split(","))
        elif key == "expect":
            expect = text.lower()

    chunked = False
    content_length = 0
    if transfer_encodings:
        if content_lengths:
            raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
        if not http11:
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if transfer_encodings != ["chunked"]:
            raise ProtocolError(501, f"transfer coding {', '.join(transfer_encodings)} is not supported")
        chunked = True
    elif content_lengths:
        if any(not v.isdigit() for v in content_lengths) or len(set(content_lengths)) != 1:
            raise ProtocolError(400, "invalid Content-Length")
        content_length = int(content_lengths[0])

    keep_alive = "close" not in connection if http11 else "keep-alive" in connection
    if expect is not None and expect != "100-continue":
        raise ProtocolError(417, f"expectation {expect!r} is not supported")
    return RequestHead(
        method.decode("ascii"),
        target.decode("latin-1"),
        "HTTP/1.1" if http11 else "HTTP/1.0",
        Headers._trusted(items),
        content_length,
        chunked,
        keep_alive,
        expect == "100-continue" and http11,
    )


def parse_chunk_size(line: bytes) -> int:
    """The size of the next chunk from its size line (chunk extensions ignored)."""
    size = line.split(b";", 1)[0].strip(b" \t")
    if _HEX.fullmatch(size) is None:
        raise ProtocolError(400, "malformed chunk size")
    return int(size, 16)


def final_status(status: object) -> int:
    """``status`` as the status of a final response: an integer from 200 to 599.

    A 1xx is an interim response (the server sends ``100 Continue`` itself): a client waits on for
    the final one after it, so a handler answering with one would leave its request hanging.

    :raises ValueError: anything else (a bool, a string, 42, 1000, 101).
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise ValueError(f"invalid response status {status!r}: a final status is an integer from 200 to 599")
    return int(status)


def check_response_header(name: object, value: object) -> None:
    """Checks one response header field before it is sent.

    :raises ValueError: a name that is not a token, or a value with CR, LF or another control
        character (which would let a value split the response); the message names the field.
    """
    text = str(value)
    if not isinstance(name, str) or _HEADER_NAME.fullmatch(name) is None:
        raise ValueError(f"invalid response header name {name!r} (value {text!r}): a name is a token, without spaces, colons or control characters")
    if _FIELD_VALUE_BAD.search(text) is not None:
        raise ValueError(f"invalid value {text!r} of response header {name!r}: a value holds no CR, LF or other control character")


def response_head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    """Serializes a response's status line and header section, blank line included.

    :raises ValueError: a header name that is not a token or a value with a control character
        (which would let a value split the response).
    """
    out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"]
    for name, value in headers:
        text = str(value)
        if not isinstance(name, str) or _HEADER_NAME.fullmatch(name) is None or _FIELD_VALUE_BAD.search(text) is not None:
            check_response_header(name, text)
        out.append(f"{name}: {text}\r\n")
    out.append("\r\n")
    return "".join(out).encode("latin-1", "replace")


def reason(status: int) -> str:
    """The standard reason phrase of ``status``."""
    return _REASONS.get(status, "Unknown")
