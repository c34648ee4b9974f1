"""The runtime's end of the control channel (docs/runtime-protocol.md): a stream socket on an
inherited file descriptor (one end of a socketpair the watchdog made), newline-delimited JSON
both ways."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["ControlChannel"]

#: Longest message accepted (a `load` with a large env stays far below).
MAX_MESSAGE = 16 * 1024 * 1024


class ControlChannel:
    """Reads messages as an async iterator; :meth:`send` may be called from any thread."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, loop: asyncio.AbstractEventLoop) -> None:
        self._reader = reader
        self._writer = writer
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.closed = False

    @classmethod
    async def open(cls, fd: int) -> ControlChannel:
        sock = socket.socket(fileno=fd)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_MESSAGE)
        return cls(reader, writer, asyncio.get_running_loop())

    def send(self, message: dict[str, Any]) -> None:
        """Sends one message (never blocks; safe from handler threads)."""
        data = (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode()
        if threading.get_ident() == self._loop_thread:
            self._write(data)
        else:
            try:
                self._loop.call_soon_threadsafe(self._write, data)
            except RuntimeError:
                pass  # the loop is closed: the runtime is exiting

    def _write(self, data: bytes) -> None:
        if not self.closed and not self._writer.is_closing():
            self._writer.write(data)

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except ConnectionError:
            self.closed = True

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Every message until the watchdog closes its end; lines that are not JSON objects are skipped."""
        while True:
            try:
                line = await self._reader.readline()
            except (ConnectionError, ValueError):
                break
            if not line:
                break
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except (ValueError, RecursionError):
                # RecursionError: nesting deeper than the parser's stack (`[[[[…`) is not JSON we
                # can read either, and must not end the runtime.
                continue
            if isinstance(message, dict) and isinstance(message.get("type"), str):
                yield message
        self.closed = True
