"""The runtime's HTTP/1.1 server: asyncio, on the Unix socket the watchdog names.

One event loop serves every connection (the watchdog keeps a pool of keep-alive connections and
sends one request at a time on each). Each request runs in a task of its own, with a copy of the
context, so the invocation set by the function layer never leaks into the next request, and so a
request can be cancelled when its connection closes (the watchdog cut it at the deadline, or the
client went away): an ``async def`` function stops at its next ``await``. Reading pauses past a
high-water mark and writing awaits the transport's drain, so a large body or a slow reader never
grows memory without bound.

The server knows nothing of functions: it hands a parsed request head and body to ``handler``,
which answers ``(status, headers, body)`` where body is bytes, None, or an async iterator of bytes
(sent chunked, with backpressure).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Union

from ._http import MAX_CHUNK_LINE, MAX_HEAD, ProtocolError, RequestHead, final_status, parse_chunk_size, parse_head, response_head

#: Answered by the runtime itself, for the watchdog warming its proxy path (docs/runtime-protocol.md).
WATCHDOG_WARM_PATH = "/_pilotlight/warm"

__all__ = ["HttpServer", "Reply", "Handler", "ResponseError"]

Body = Union[bytes, bytearray, memoryview, AsyncIterator[bytes], None]
Reply = tuple[int, Iterable[tuple[str, str]], Body]
Handler = Callable[[RequestHead, bytes], Awaitable[Reply]]

#: Buffered, unread input past which reading from the socket pauses (backpressure on uploads).
HIGH_WATER = 1 << 20
#: ...and below which it resumes.
LOW_WATER = 1 << 18

# Framing is the server's business: a function's own values for these are dropped.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"})


def _error_reply(status: int, message: str, *, keep: bool = False, head_only: bool = False) -> bytes:
    body = json.dumps({"message": message}).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    if not keep:
        headers.append(("connection", "close"))
    return response_head(status, headers) + (b"" if head_only else body)


class _Connection(asyncio.Protocol):
    """One client connection: a read buffer fed by the transport, flow control both ways."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = server.loop
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._eof = False
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        #: True from the first byte of a request head until its response is written.
        self.busy = False
        self.request_task: asyncio.Task[bool] | None = None
        self._serve_task: asyncio.Task[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._server._connections.add(self)
        # Kept here: the loop holds tasks only weakly.
        self._serve_task = self._loop.create_task(self._server._serve(self))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._reading_paused and len(self._buf) > HIGH_WATER:
            self._reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self.closed = True
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._server._connections.discard(self)
        task = self.request_task
        if task is not None and not task.done():
            # The peer is gone: nobody will read the answer, so stop working on it.
            task.cancel()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading ---------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _more(self) -> bool:
        """Waits for more input; False once the peer has closed and nothing more will come."""
        if self._eof:
            return False
        if self._reading_paused:
            self._reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        waiter = self._loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None
        return True

    def _consumed(self) -> None:
        if self._reading_paused and len(self._buf) <= LOW_WATER:
            self._reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    async def read_head(self) -> bytes | None:
        """The next request head, without its final CRLF CRLF; None if the peer closed between requests."""
        buf = self._buf
        start = 0
        while True:
            # A client may send an empty line before a request line (RFC 9112 §2.2).
            while buf[:2] == b"\r\n":
                del buf[:2]
                start = 0
            end = buf.find(b"\r\n\r\n", start)
            if end > MAX_HEAD:
                raise ProtocolError(431, "request header fields too large")
            if end >= 0:
                head = bytes(buf[:end])
                del buf[: end + 4]
                self._consumed()
                return head
            if len(buf) > MAX_HEAD:
                raise ProtocolError(431, "request header fields too large")
            start = max(0, len(buf) - 3)
            if not await self._more():
                if buf:
                    raise ConnectionResetError("the peer closed the connection inside a request head")
                return None

    async def read_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; raises ConnectionResetError if the peer closes first."""
        buf = self._buf
        if len(buf) >= n:
            data = bytes(buf[:n])
            del buf[:n]
            self._consumed()
            return data
        parts: list[bytes] = []
        remaining = n
        while remaining:
            if not buf:
                if not await self._more():
                    raise ConnectionResetError("the peer closed the connection inside a request body")
                continue
            take = min(remaining, len(buf))
            parts.append(bytes(buf[:take]))
            del buf[:take]
            remaining -= take
            self._consumed()
        return b"".join(parts)

    async def read_line(self, limit: int) -> bytes:
        """One CRLF-terminated line, without the CRLF."""
        buf = self._buf
        start = 0
        while True:
            end = buf.find(b"\r\n", start)
            if end >= 0:
                line = bytes(buf[:end])
                del buf[: end + 2]
                self._consumed()
                return line
            if len(buf) > limit:
                raise ProtocolError(400, "line too long in a chunked body")
            start = max(0, len(buf) - 1)
            if not await self._more():
                raise ConnectionResetError("the peer closed the connection inside a chunked body")

    async def read_body(self, head: RequestHead) -> bytes:
        """The whole request body, de-chunked."""
        if head.expect_continue:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not head.chunked:
            return await self.read_exactly(head.content_length) if head.content_length else b""
        parts: list[bytes] = []
        while True:
            size = parse_chunk_size(await self.read_line(MAX_CHUNK_LINE))
            if size == 0:
                # Trailer fields are read and dropped, up to the blank line.
                while await self.read_line(MAX_HEAD):
                    pass
                return b"".join(parts)
            parts.append(await self.read_exactly(size))
            if await self.read_exactly(2) != b"\r\n":
                raise ProtocolError(400, "malformed chunk")

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if not self.closed and self.transport is not None:
            self.transport.writelines(parts)

    async def drain(self) -> None:
        if self.closed:
            raise ConnectionResetError("the connection is closed")
        if not self._write_paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiter = waiter
        try:
            await waiter
        finally:
            self._drain_waiter = None
        if self.closed:
            raise ConnectionResetError("the connection is closed")

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close_if_idle(self) -> None:
        if not self.busy and not self._buf:
            self.close()


class HttpServer:
    """HTTP/1.1 over a Unix socket (or TCP, for tests), answering through ``handler``.

    ``handler`` may be replaced at any time (the runtime swaps its 503 answer for the loaded
    function's); requests already running keep the one they started with.
    """

    def __init__(self, handler: Handler, *, idle_timeout: float = 120.0, on_error: Callable[[BaseException], None] | None = None) -> None:
        self.handler = handler
        self.idle_timeout = idle_timeout
        self.closing = False
        self.loop: asyncio.AbstractEventLoop = asyncio.get_running_loop()
        self._on_error = on_error
        self._connections: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._path: str | None = None
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def listen_unix(self, path: str) -> None:
        """Listens on ``path``, removing a stale socket file left by a predecessor first."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self._server = await self.loop.create_unix_server(lambda: _Connection(self), path, backlog=1024)
        self._path = path

    async def listen_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listens on TCP (for tests and tools); returns the port."""
        self._server = await self.loop.create_server(lambda: _Connection(self), host, port, backlog=1024)
        return self._server.sockets[0].getsockname()[1]

    @property
    def inflight(self) -> int:
        """Requests being answered now."""
        return self._inflight

    @property
    def connections(self) -> int:
        return len(self._connections)

    def close(self) -> None:
        """Stops accepting connections and closes idle ones; busy ones close after their response."""
        if self.closing:
            return
        self.closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close_if_idle()
        if self._path is not None:
            try:
                os.unlink(self._path)
            except OSError:
                pass

    async def wait_idle(self, timeout: float | None) -> bool:
        """Waits until no request is in flight; False if ``timeout`` seconds passed first."""
        if self._inflight == 0:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
            return True
        except TimeoutError:
            return False

    def abort_all(self) -> None:
        """Cuts every connection (used when the grace period is over)."""
        for conn in list(self._connections):
            conn.abort()

    def _report(self, error: BaseException) -> None:
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:  # noqa: BLE001 - reporting must never break serving
                pass

    async def _serve(self, conn: _Connection) -> None:
        loop = self.loop
        try:
            while not conn.closed:
                timer = loop.call_later(self.idle_timeout, conn.close_if_idle)
                try:
                    raw = await conn.read_head()
                finally:
                    timer.cancel()
                if raw is None:
                    break
                conn.busy = True
                self._inflight += 1
                self._idle.clear()
                try:
                    task = loop.create_task(self._exchange(conn, raw), context=contextvars.copy_context())
                    conn.request_task = task
                    keep = await task
                finally:
                    conn.request_task = None
                    conn.busy = False
                    self._inflight -= 1
                    if self._inflight == 0:
                        self._idle.set()
                if not keep or self.closing:
                    break
        except ProtocolError as error:
            conn.write(_error_reply(error.status, error.message))
        except (ConnectionError, asyncio.CancelledError):
            conn.abort()
            return
        except Exception as error:  # noqa: BLE001 - a bug here must not kill the loop
            self._report(error)
            conn.abort()
            return
        conn.close()

    async def _exchange(self, conn: _Connection, raw: bytes) -> bool:
        """Reads one request's body, answers it; True to keep the connection for the next one."""
        try:
            head = parse_head(raw)
            body = await conn.read_body(head) if head.has_body else b""
        except ProtocolError as error:
            conn.write(_error_reply(error.status, error.message))
            return False
        if head.target == WATCHDOG_WARM_PATH:
            # The watchdog warms its own request path through here; never the function's code.
            return await self._write(conn, head, (204, [], b""))
        try:
            reply = await self.handler(head, body)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the handler should not raise; answer 500 if it does
            self._report(error)
            conn.write(_error_reply(500, "the runtime failed to answer"))
            return False
        return await self._write(conn, head, reply)

    async def _write(self, conn: _Connection, head: RequestHead, reply: Reply) -> bool:
        keep = head.keep_alive and not self.closing
        body = reply[2] if isinstance(reply, tuple) and len(reply) == 3 else None
        try:
            response, data, stream, chunked, keep = _prepare(head, reply[0], reply[1], body, keep)
        except Exception as error:  # noqa: BLE001 - a reply that cannot be sent is the handler's fault: a 500
            # Nothing was written yet: the client gets a whole 500, and the connection stays usable.
            if not isinstance(body, (bytes, bytearray, memoryview, type(None))):
                await _aclose(body)
            self._report(ResponseError(str(error)))
            conn.write(_error_reply(500, "the response could not be sent", keep=keep, head_only=head.method == "HEAD"))
            await conn.drain()
            return keep
        if stream is None:
            if not isinstance(body, (bytes, bytearray, memoryview, type(None))):
                await _aclose(body)  # a stream with nothing to send (HEAD, 204, 304)
            conn.write(response + data)
            await conn.drain()
            return keep
        conn.write(response)
        try:
            async for chunk in stream:
                if not chunk:
                    continue
                if chunked:
                    conn.writelines([b"%x\r\n" % len(chunk), chunk, b"\r\n"])
                else:
                    conn.write(chunk)
                await conn.drain()
        except (ConnectionError, asyncio.CancelledError):
            await _aclose(stream)
            raise
        except Exception:  # noqa: BLE001 - the body failed half-way: the client must see a cut response
            # The function layer logged it; an incomplete chunked body tells the client it failed.
            conn.abort()
            return False
        if chunked:
            conn.write(b"0\r\n\r\n")
        await conn.drain()
        return keep


class ResponseError(ValueError):
    """A handler's reply that cannot be sent (a status that is not final, an invalid header):
    reported through ``on_error``, and answered 500."""


def _prepare(
    head: RequestHead, status: object, headers: Iterable[tuple[str, str]], body: Body, keep: bool
) -> tuple[bytes, bytes, AsyncIterator[bytes] | None, bool, bool]:
    """The response head for a reply, before anything is written: (head, bytes to send with it,
    the stream to send after it or None, whether the stream is chunked, whether to keep the
    connection). Pure: the caller closes a stream that is not to be sent (HEAD, 204, 304).

    :raises ValueError: a status that is not a final one (200-599), an invalid header.
    """
    status = final_status(status)
    no_body = head.method == "HEAD" or status in (204, 304)
    out = [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]
    if body is None or isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body) if body is not None else b""
        if status not in (204, 304):
            out.append(("content-length", str(len(data))))
        if not keep:
            out.append(("connection", "close"))
        return response_head(status, out), (b"" if no_body else data), None, False, keep
    stream: AsyncIterator[bytes] = body
    if no_body:
        if not keep:
            out.append(("connection", "close"))
        return response_head(status, out), b"", None, False, keep
    chunked = head.version == "HTTP/1.1"
    if chunked:
        out.append(("transfer-encoding", "chunked"))
    else:
        keep = False
    if not keep:
        out.append(("connection", "close"))
    return response_head(status, out), b"", stream, chunked, keep


async def _aclose(stream: object) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # noqa: BLE001 - closing an abandoned stream is best effort
            pass
