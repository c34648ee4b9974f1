"""The runtime's HTTP/1.1 server, in-process on a real Unix socket, driven by raw bytes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile

import pytest

from pilotlight.server import HttpServer


@pytest.fixture
def socket_path():
    # Unix socket paths are limited to ~100 bytes: a short directory, not pytest's tmp_path.
    directory = tempfile.mkdtemp(prefix="pl-srv-")
    yield os.path.join(directory, "s.sock")
    shutil.rmtree(directory, ignore_errors=True)


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, chunked: bool) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.chunked = chunked


async def read_response(reader: asyncio.StreamReader, method: str = "GET") -> Response:
    """A minimal HTTP/1.1 response reader for the tests (Content-Length, chunked, or to EOF)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if status == 100:
        return Response(status, headers, b"", False)
    if method == "HEAD" or status in (204, 304):
        return Response(status, headers, b"", False)
    if headers.get("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return Response(status, headers, b"".join(parts), True)
            parts.append(await reader.readexactly(size))
            assert await reader.readexactly(2) == b"\r\n"
    if "content-length" in headers:
        return Response(status, headers, await reader.readexactly(int(headers["content-length"])), False)
    return Response(status, headers, await reader.read(), False)


def request(method: str, target: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "host: localhost"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None and "transfer-encoding" not in {k.lower() for k in (headers or {})}:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def echo(head, body):
    """Answers with what it got."""
    return 200, [("content-type", "text/plain"), ("x-method", head.method), ("x-target", head.target)], body


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


async def serving(socket_path, handler=echo):
    server = HttpServer(handler)
    await server.listen_unix(socket_path)
    return server


def test_removes_a_stale_socket_file_before_listening(socket_path):
    async def main():
        with open(socket_path, "w") as stale:
            stale.write("left by a crashed predecessor")
        server = await serving(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(request("GET", "/"))
        assert (await read_response(reader)).status == 200
        writer.close()
        server.close()

    run(main())


def test_keeps_the_connection_alive_across_requests_with_bodies(socket_path):
    async def main():
        await serving(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        for i in range(5):
            writer.write(request("POST", f"/n/{i}?q=1", body=f"body {i}".encode()))
            res = await read_response(reader)
            assert res.status == 200
            assert res.body == f"body {i}".encode()
            assert res.headers["x-target"] == f"/n/{i}?q=1"
            assert res.headers["content-length"] == str(len(res.body))
            assert "connection" not in res.headers
        writer.close()

    run(main())


def test_closes_a_connection_left_idle_for_idle_timeout(socket_path):
    async def main():
        server = HttpServer(echo, idle_timeout=0.2)
        await server.listen_unix(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(request("GET", "/"))
        assert (await read_response(reader)).status == 200
        assert server.connections == 1
        # Nothing more is sent: the server closes its end (run() gives up after 20 s otherwise).
        assert await reader.read() == b""
        for _ in range(100):
            if server.connections == 0:
                break
            await asyncio.sleep(0.01)
        assert server.connections == 0
        server.close()

    run(main())


def test_closes_when_the_client_asks(socket_path):
    async def main():
        await serving(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(request("GET", "/", {"connection": "close"}))
        res = await read_response(reader)
        assert res.headers["connection"] == "close"
        assert await reader.read() == b""

    run(main())


def test_decodes_a_chunked_request_body_with_extensions_and_trailers(socket_path):
    async def main():
        await serving(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        raw = request("POST", "/", {"transfer-encoding": "chunked"})
        writer.write(raw + b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: 1\r\n\r\n")
        res = await read_response(reader)
        assert res.body == b"hello world"
        # The connection is still usable afterwards: the framing was read exactly.
        writer.write(request("POST", "/again", body=b"x"))
        assert (await read_response(reader)).body == b"x"
        writer.close()

    run(main())


def test_a_body_arriving_byte_by_byte(socket_path):
    async def main():
        await serving(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        raw = request("POST", "/slow", {"transfer-encoding": "chunked"}) + b"3\r\nabc\r\n0\r\n\r\n"
        for i in range(len(raw)):
            writer.write(raw[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0)
        assert (await read_response(reader)).body == b"abc"
        writer.close()

    run(main())


def test_answers_pipelined_requests_in_order(socket_path):
    async def main():
        await serving(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(request("POST", "/1", body=b"one") + request("POST", "/2", body=b"two") + request("GET", "/3"))
        bodies = [(await read_response(reader)).headers["x-target"] for _ in range(3)]
        assert bodies == ["/1", "/2", "/3"]
        writer.close()

    run(main())


def test_sends_100_continue_before_reading_the_body(socket_path):
    async def main():
        await serving(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(b"POST / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n")
        interim = await read_response(reader)
        assert interim.status == 100
        writer.write(b"data")
        res = await read_response(reader)
        assert res.status == 200
        assert res.body == b"data"
        writer.close()

    run(main())


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET / HTTP/3.0\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"GET / HTTP/1.1\r\nx-big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    ],
)
def test_refuses_bad_requests_and_closes(socket_path, raw, status):
    async def main():
        await serving(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(raw)
        res = await read_response(reader)
        assert res.status == status
        assert res.headers["connection"] == "close"
        assert await reader.read() == b""

    run(main())


def test_streams_an_async_iterator_chunked_with_backpressure(socket_path):
    size = 8 * 1024 * 1024
    block = os.urandom(64 * 1024)

    async def stream():
        for _ in range(size // len(block)):
            yield block

    async def handler(head, body):
        return 200, [("content-type", "application/octet-stream")], stream()

    async def main():
        await serving(socket_path, handler)
        reader, writer = await asyncio.open_unix_connection(socket_path, limit=1 << 20)
        writer.write(request("GET", "/"))
        res = await read_response(reader)
        assert res.chunked
        assert "content-length" not in res.headers
        assert len(res.body) == size
        assert hashlib.sha256(res.body).digest() == hashlib.sha256(block * (size // len(block))).digest()
        writer.close()

    run(main())


def test_head_gets_headers_only(socket_path):
    async def main():
        await serving(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(request("HEAD", "/") + request("GET", "/next"))
        first = await read_response(reader, "HEAD")
        assert first.status == 200
        assert first.headers["content-length"] == "0"
        # Nothing but headers came: the next response parses cleanly.
        assert (await read_response(reader)).headers["x-target"] == "/next"
        writer.close()

    run(main())


def test_a_large_upload_is_read_whole(socket_path):
    payload = os.urandom(5 * 1024 * 1024 + 7)

    async def digest(head, body):
        return 200, [], hashlib.sha256(body).hexdigest().encode()

    async def main():
        await serving(socket_path, digest)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(request("POST", "/", body=payload))
        await writer.drain()
        assert (await read_response(reader)).body == hashlib.sha256(payload).hexdigest().encode()
        writer.close()

    run(main())


def test_serves_many_connections_concurrently(socket_path):
    count = 50

    async def main():
        arrived = 0
        everyone = asyncio.Event()

        async def barrier(head, body):
            nonlocal arrived
            arrived += 1
            if arrived == count:
                everyone.set()
            # No request can finish before all of them are being served at once.
            await everyone.wait()
            return 200, [], head.target.encode()

        await serving(socket_path, barrier)

        async def one(i):
            reader, writer = await asyncio.open_unix_connection(socket_path)
            writer.write(request("GET", f"/{i}"))
            res = await read_response(reader)
            writer.close()
            return res.body

        bodies = await asyncio.gather(*(one(i) for i in range(count)))
        assert bodies == [f"/{i}".encode() for i in range(count)]

    run(main())


def test_a_request_whose_connection_closes_is_cancelled(socket_path):
    async def main():
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def forever(head, body):
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return 200, [], b""

        server = await serving(socket_path, forever)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(request("GET", "/"))
        await started.wait()
        assert server.inflight == 1
        writer.close()
        await cancelled.wait()
        for _ in range(100):
            if server.inflight == 0:
                break
            await asyncio.sleep(0.01)
        assert server.inflight == 0

    run(main())


def test_close_stops_accepting_closes_idle_connections_and_lets_busy_ones_finish(socket_path):
    async def main():
        release = asyncio.Event()
        entered = asyncio.Event()

        async def held(head, body):
            if head.target == "/hold":
                entered.set()
                await release.wait()
            return 200, [], b"done"

        server = await serving(socket_path, held)
        idle_reader, idle_writer = await asyncio.open_unix_connection(socket_path)
        idle_writer.write(request("GET", "/quick"))
        await read_response(idle_reader)
        busy_reader, busy_writer = await asyncio.open_unix_connection(socket_path)
        busy_writer.write(request("GET", "/hold"))
        await entered.wait()

        server.close()
        assert await idle_reader.read() == b""  # the idle connection was closed
        with pytest.raises(OSError):
            await asyncio.open_unix_connection(socket_path)
        assert await server.wait_idle(0.01) is False
        release.set()
        res = await read_response(busy_reader)
        assert res.body == b"done"
        assert res.headers["connection"] == "close"
        assert await server.wait_idle(5) is True

    run(main())


def test_a_stream_failing_half_way_cuts_the_response(socket_path):
    async def broken():
        yield b"first"
        raise RuntimeError("half-way")

    async def handler(head, body):
        return 200, [], broken()

    async def main():
        await serving(socket_path, handler)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(request("GET", "/"))
        with pytest.raises(asyncio.IncompleteReadError):
            await read_response(reader)

    run(main())


def test_a_handler_that_raises_gets_a_500_and_the_error_reported(socket_path):
    reported = []

    async def bug(head, body):
        raise RuntimeError("a bug")

    async def main():
        server = HttpServer(bug, on_error=reported.append)
        await server.listen_unix(socket_path)
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(request("GET", "/"))
        assert (await read_response(reader)).status == 500

    run(main())
    assert [str(e) for e in reported] == ["a bug"]


class _Stream:
    """An async iterator that records whether it was closed (and whether it was read)."""

    def __init__(self) -> None:
        self.read = False
        self.closed = False

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        if self.read:
            raise StopAsyncIteration
        self.read = True
        return b"streamed"

    async def aclose(self) -> None:
        self.closed = True


async def answer_then_serve_again(socket_path, reply, method="GET"):
    """Sends a request the handler answers with ``reply`` (bytes or a stream), then a good one on
    the same connection; returns both responses and what the server reported."""
    reported: list[BaseException] = []

    async def handler(head, body):
        if head.target == "/bad":
            return reply
        return 200, [("content-type", "text/plain")], b"fine"

    server = HttpServer(handler, on_error=reported.append)
    await server.listen_unix(socket_path)
    reader, writer = await asyncio.open_unix_connection(socket_path)
    writer.write(request(method, "/bad"))
    bad = await read_response(reader, method)
    writer.write(request("GET", "/good"))
    good = await read_response(reader)
    writer.close()
    server.close()
    return bad, good, reported


@pytest.mark.parametrize(
    ("header", "named"),
    [
        (("x-split", "one\r\nx-injected: 1"), "'x-split'"),
        (("x-lf", "one\ntwo"), "'x-lf'"),
        (("x-cr", "one\rtwo"), "'x-cr'"),
        (("x-nul", "a\x00b"), "'x-nul'"),
        (("bad name", "v"), "'bad name'"),
        (("x-bad\r\nname", "v"), "'x-bad\\r\\nname'"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "stream"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_header_that_cannot_be_sent_is_a_500_reported_and_the_connection_stays_usable(socket_path, header, named, streamed, method):
    stream = _Stream()

    async def main():
        body = stream if streamed else b"never sent"
        return await answer_then_serve_again(socket_path, (200, [("content-type", "text/plain"), header], body), method)

    bad, good, reported = run(main())
    assert bad.status == 500
    assert "x-injected" not in bad.headers
    assert "connection" not in bad.headers
    assert bad.body == (b"" if method == "HEAD" else b'{"message": "the response could not be sent"}')
    assert (good.status, good.body) == (200, b"fine")
    [error] = reported
    assert type(error).__name__ == "ResponseError"
    assert named in str(error)
    if streamed:
        assert stream.closed
        assert not stream.read


@pytest.mark.parametrize("status", [100, 101, 103, 199, 42, 0, -200, 600, 1000, "200", "abc", None, True, 200.0])
@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "stream"])
def test_a_status_that_is_not_a_final_one_is_a_500_reported_and_the_connection_stays_usable(socket_path, status, streamed):
    stream = _Stream()

    async def main():
        return await answer_then_serve_again(socket_path, (status, [], stream if streamed else b"never sent"))

    bad, good, reported = run(main())
    assert bad.status == 500
    assert bad.body == b'{"message": "the response could not be sent"}'
    assert (good.status, good.body) == (200, b"fine")
    [error] = reported
    assert f"invalid response status {status!r}" in str(error)
    if streamed:
        assert stream.closed
        assert not stream.read


@pytest.mark.parametrize("status", [200, 299, 404, 599])
def test_final_statuses_from_200_to_599_are_sent(socket_path, status):
    async def main():
        return await answer_then_serve_again(socket_path, (status, [], b"ok"))

    bad, good, reported = run(main())
    assert (bad.status, bad.body, reported) == (status, b"ok", [])
