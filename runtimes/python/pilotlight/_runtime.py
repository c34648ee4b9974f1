"""The runtime process (docs/runtime-protocol.md): pre-starts, serves HTTP/1.1 on the Unix socket
the watchdog named, says ``hello`` on the control channel, loads a function when told to,
answers pings from the event loop that serves requests, and stops gracefully.

Everything a function needs is imported before ``hello`` — the SDK, json, asyncio, the HTTP
machinery, the thread pool (one request goes through the whole path over the real socket) — so a
``load`` costs only the function's own modules.
"""

from __future__ import annotations

# Imported ahead of any user code: what functions commonly use, so their import is not paid at load.
import asyncio
import base64  # noqa: F401
import hashlib  # noqa: F401
import json
import os
import platform
import signal
import sys
import time
import traceback
import typing  # noqa: F401
import uuid  # noqa: F401
from collections.abc import Callable
from typing import Any

from . import hints
from ._http import RequestHead
from .context import FunctionInfo
from .control import ControlChannel
from .loader import LoadError, LoadRequest, load_function
from .logging import capture_stdio, install, logger, set_destination
from .serve import STUCK_AFTER_S, ServedFunction, serve_callable, stuck_threads
from .server import HttpServer, Reply, ResponseError

__all__ = ["Runtime", "main", "PROTOCOL", "IDLE_TIMEOUT_S"]

#: Protocol version this runtime speaks.
PROTOCOL = 1
#: Grace for pre-stop hooks when SIGTERM comes without a `stop` message.
DEFAULT_GRACE_MS = 10_000
#: How long a connection to the runtime's socket may stay idle before the runtime closes it, s.
#: It must outlive the watchdog's own keep-alive for its upstream connections (10 minutes, see
#: docs/runtime-protocol.md): then the watchdog always closes an idle connection first and never
#: sends a request into one this side is closing at that moment. The Node runtime uses 660 s too.
IDLE_TIMEOUT_S = 660.0

_NOT_LOADED: Reply = (503, [("content-type", "application/json")], b'{"message":"no function loaded"}')
_WARMUP_PATH = "/_pilotlight_warmup"


class Runtime:
    """One runtime process's state. ``exit`` is how it ends (``os._exit``; tests pass their own)."""

    def __init__(self, socket_path: str, control_fd: int, *, exit: Callable[[int], None] = os._exit) -> None:
        self.socket_path = socket_path
        self.control_fd = control_fd
        self._exit = exit
        self.served: ServedFunction | None = None
        self._loading = False
        self._stopping: asyncio.Task[None] | None = None
        self._stuck_reported = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.server: HttpServer | None = None
        self.control: ControlChannel | None = None

    # -- start --------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # print() from handler threads running at once must not splice lines (nor JSON log lines).
        capture_stdio()
        set_destination(fd=1)
        install()
        self.control = await ControlChannel.open(self.control_fd)
        self.server = HttpServer(self._not_loaded, idle_timeout=IDLE_TIMEOUT_S, on_error=self._server_error)
        await self.server.listen_unix(self.socket_path)
        await self._warm_up()
        control = self.control
        hints.set_sink(lambda hint: control.send({"type": "hint", **hint}))
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal)
        control.send({"type": "hello", "protocol": PROTOCOL, "runtime": "python", "version": platform.python_version(), "pid": os.getpid()})
        async for message in control.messages():
            kind = message["type"]
            if kind == "ping":
                # Answered here, on the loop that serves requests: a loop blocked by user code
                # stops answering, and the watchdog sees it. A thread stuck in work nobody waits
                # for cannot be stopped either: the pong is withheld so the watchdog replaces this
                # process, as it would a blocked loop.
                stuck = stuck_threads()
                if stuck:
                    if not self._stuck_reported:
                        self._stuck_reported = True
                        logger.error(
                            f"{stuck} handler thread(s) still running over {STUCK_AFTER_S:g} s after their request was "
                            "cancelled (an exec timeout or a client gone); Python cannot stop a thread, so this runtime "
                            "stops answering health pings to be replaced",
                            code="PILOTLIGHT_HANDLER_STUCK",
                            threads=stuck,
                        )
                    continue
                control.send({"type": "pong", "id": message.get("id")})
            elif kind == "load":
                self._spawn(self._load(message))
            elif kind == "stop":
                grace = message.get("graceMs")
                self.stop(float(grace) if isinstance(grace, (int, float)) and grace > 0 else DEFAULT_GRACE_MS)
            # Unknown types are ignored, so the protocol can grow.
        # The watchdog is gone (even killed): never outlive it.
        self._finish(0)

    async def _not_loaded(self, head: RequestHead, body: bytes) -> Reply:
        return _NOT_LOADED

    async def _warm_up(self) -> None:
        """Sends one request through the socket, the parser, the context, the thread pool and
        JSON, so the first real request pays for none of it."""
        assert self.server is not None
        warm = serve_callable(lambda request, context: {"warm": request.json(), "id": context.request_id}, FunctionInfo())
        self.server.handler = warm.handle
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path)
            body = b'{"warm":true}'
            writer.write(
                b"POST " + _WARMUP_PATH.encode() + b" HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
                b"x-request-id: warm-up\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)
            )
            await writer.drain()
            await reader.read()
            writer.close()
        except OSError:
            pass
        finally:
            self.server.handler = self._not_loaded

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- load ---------------------------------------------------------------------------------

    async def _load(self, message: dict[str, Any]) -> None:
        assert self.control is not None and self.server is not None
        request_id = message.get("id")
        if self.served is not None or self._loading:
            self.control.send({"type": "error", "id": request_id, "code": "PILOTLIGHT_ALREADY_LOADED", "message": "a function is already loaded"})
            return
        self._loading = True
        started = time.perf_counter()
        try:
            served = await load_function(LoadRequest.from_message(message))
        except LoadError as error:
            stack = error.stack or "".join(traceback.format_exception(type(error), error, error.__traceback__))
            self.control.send({"type": "error", "id": request_id, "code": error.code, "message": error.message, "stack": stack})
            return
        except Exception as error:  # noqa: BLE001 - any other failure is still a failed load
            self.control.send(
                {
                    "type": "error",
                    "id": request_id,
                    "code": "PILOTLIGHT_LOAD_FAILED",
                    "message": f"{type(error).__name__}: {error}",
                    "stack": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
                }
            )
            return
        finally:
            self._loading = False
        self.served = served
        self.server.handler = served.handle
        self.control.send(
            {
                "type": "loaded",
                "id": request_id,
                "ms": (time.perf_counter() - started) * 1000,
                "kind": served.kind,
                "routes": served.routes,
                "schedules": served.schedules,
            }
        )

    # -- stop ---------------------------------------------------------------------------------

    def _on_signal(self) -> None:
        self.stop(DEFAULT_GRACE_MS)

    def stop(self, grace_ms: float) -> asyncio.Task[None]:
        """Stops once, whichever comes first of ``stop`` and SIGTERM: no new connections, in-flight
        requests finish, pre-stop hooks run with the time left, logs are flushed, exit 0."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._shutdown(grace_ms))
        return self._stopping

    async def _shutdown(self, grace_ms: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_ms / 1000
        if self.server is not None:
            self.server.close()
            if not await self.server.wait_idle(max(0.0, deadline - loop.time())):
                logger.warn("requests were still running when the grace period ended", inflight=self.server.inflight)
        if self.served is not None:
            await self.served.pre_stop(max(0.0, deadline - loop.time()) * 1000)
        if self.control is not None:
            await self.control.drain()
        self._finish(0)

    def _finish(self, code: int) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                # Every thread's unfinished line too, not only this thread's.
                getattr(stream, "flush_all", stream.flush)()
            except (OSError, ValueError):
                pass
        self._exit(code)

    def _server_error(self, error: BaseException) -> None:
        # Called inside the request's task: the line carries its request id when the function set one.
        if isinstance(error, ResponseError):
            logger.error(f"the function's response cannot be sent, so it was answered 500: {error}", err=error)
        else:
            logger.error(f"the runtime failed to answer a request: {error}", err=error)


def main() -> None:
    """``python3 -m pilotlight.runtime``, as the watchdog starts it."""
    socket_path = os.environ.get("PILOTLIGHT_RUNTIME_SOCKET")
    if not socket_path:
        sys.stderr.write("PILOTLIGHT_RUNTIME_SOCKET is not set: this runtime is started by the pilotlight watchdog\n")
        sys.exit(2)
    try:
        control_fd = int(os.environ.get("PILOTLIGHT_CONTROL_FD", "3"))
    except ValueError:
        sys.stderr.write("PILOTLIGHT_CONTROL_FD must be a file descriptor number\n")
        sys.exit(2)
    runtime = Runtime(socket_path, control_fd)
    try:
        asyncio.run(runtime.run())
    except BaseException as error:  # noqa: BLE001 - report why the runtime could not start, then exit
        if isinstance(error, SystemExit):
            raise
        sys.stderr.write(json.dumps({"level": "fatal", "msg": f"the python runtime failed: {error}", "err": {"type": type(error).__name__, "message": str(error), "stack": traceback.format_exc()}}) + "\n")
        sys.stderr.flush()
        os._exit(1)
