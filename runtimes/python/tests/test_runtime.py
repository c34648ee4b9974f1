"""The runtime protocol (docs/runtime-protocol.md), driven as the watchdog drives it: the real
``python3 -m pilotlight.runtime`` process, a socketpair as its control channel, HTTP over its
Unix socket."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from typing import Any

import pytest

from conftest import PACKAGE_ROOT


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 20) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class Runtime:
    """One runtime process, as the watchdog starts it."""

    def __init__(self, cwd: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="pl-rt-")
        self.socket_path = os.path.join(self.dir, "runtime.sock")
        ours, theirs = socket.socketpair()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": PACKAGE_ROOT,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PILOTLIGHT_RUNTIME_SOCKET": self.socket_path,
            "PILOTLIGHT_CONTROL_FD": str(theirs.fileno()),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pilotlight.runtime"],
            env=env,
            cwd=cwd,
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        theirs.close()
        self.control = ours
        self.control.settimeout(20)
        self._reader = ours.makefile("rb")
        self._next_id = 1
        self.stdout: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._collect, args=(self.process.stdout, True), daemon=True),
            threading.Thread(target=self._collect, args=(self.process.stderr, False), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _collect(self, stream, as_json: bool) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if as_json:
                try:
                    self.stdout.append(json.loads(line))
                except ValueError:
                    self.stderr.append(line)
            else:
                self.stderr.append(line)

    def send(self, message: dict[str, Any]) -> None:
        self.control.sendall((json.dumps(message) + "\n").encode())

    def recv(self) -> dict[str, Any]:
        line = self._reader.readline()
        if not line:
            raise EOFError(f"the control channel closed; stderr: {self.stderr}")
        return json.loads(line)

    def recv_type(self, kind: str) -> dict[str, Any]:
        while True:
            message = self.recv()
            if message["type"] == kind:
                return message

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        message = {**message, "id": self._next_id}
        self._next_id += 1
        self.send(message)
        while True:
            reply = self.recv()
            if reply.get("id") == message["id"]:
                return reply

    def http(self, method: str = "GET", path: str = "/", body: bytes | None = None, headers: dict[str, str] | None = None):
        conn = UnixConnection(self.socket_path)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return res.status, dict(res.getheaders()), res.read()
        finally:
            conn.close()

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.control.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def runtime(tmp_path):
    started = Runtime(str(tmp_path))
    yield started
    started.close()


def function(root, source: str, name: str = "main.py") -> str:
    path = root / "fn"
    path.mkdir(exist_ok=True)
    (path / name).write_text(textwrap.dedent(source))
    return str(path)


SERVED = """
    import asyncio, os, time
    from pilotlight import get, post, hints, logger, pre_stop, schedule

    @post("/")
    def hello(request, context):
        logger.info("function is running", name=request.header("name"))
        return f"hello {request.header('name')}"

    @get("/hint")
    def hint():
        hints.saturated(True)
        return "hinted"

    @get("/wait-sync")
    def wait_sync(request):
        # Blocks its pool thread, not the loop.
        open(request.query["entered"], "w").close()
        while not os.path.exists(request.query["release"]):
            time.sleep(0.01)
        return "released"

    @get("/block-loop")
    async def block_loop(request):
        # Blocks the event loop itself: what a hung runtime looks like.
        open(request.query["entered"], "w").close()
        while not os.path.exists(request.query["release"]):
            time.sleep(0.01)
        return "unblocked"

    @schedule("*/10 * * * *", name="sweep")
    def sweep():
        return "swept"

    @pre_stop
    def done(info):
        with open(os.environ["MARKER"], "w") as marker:
            marker.write(f"{info.remaining_ms() > 0} {os.path.exists(os.environ['MARKER'] + '.served')}")
        logger.info("pre-stop ran")
"""


def wait_for_file(path: str) -> None:
    for _ in range(2000):
        if os.path.exists(path):
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


def test_says_hello_once_pre_started_and_answers_503_until_loaded(runtime):
    hello = runtime.recv()
    assert hello["type"] == "hello"
    assert hello["protocol"] == 1
    assert hello["runtime"] == "python"
    assert hello["pid"] == runtime.process.pid
    assert hello["version"] == ".".join(map(str, sys.version_info[:3]))
    status, headers, body = runtime.http("GET", "/")
    assert status == 503
    assert json.loads(body) == {"message": "no function loaded"}


def test_pongs_with_the_same_id_and_ignores_what_it_does_not_know(runtime):
    runtime.recv_type("hello")
    runtime.control.sendall(b"not json\n\n" + json.dumps({"type": "from-the-future", "id": 99}).encode() + b"\n")
    # None of that, nor `wake`, gets a reply: the next line the runtime sends is the pong.
    runtime.send({"type": "wake"})
    runtime.send({"type": "ping", "id": 50})
    assert runtime.recv() == {"type": "pong", "id": 50}
    assert runtime.ask({"type": "ping"}) == {"type": "pong", "id": 1}
    assert runtime.ask({"type": "ping"}) == {"type": "pong", "id": 2}


def test_a_line_nested_deeper_than_the_json_parser_can_go_is_skipped_not_fatal(runtime):
    runtime.recv_type("hello")
    # json.loads raises RecursionError (not ValueError) on these: the runtime must skip them as it
    # skips any other line that is not a JSON object, and keep answering.
    runtime.control.sendall(b"[" * 100_000 + b"\n" + b'{"a":' * 100_000 + b"\n")
    runtime.send({"type": "ping", "id": 51})
    assert runtime.recv() == {"type": "pong", "id": 51}
    assert runtime.process.poll() is None


def test_loads_serves_hints_and_refuses_a_second_load(runtime, tmp_path):
    runtime.recv_type("hello")
    root = function(tmp_path, SERVED)
    loaded = runtime.ask({"type": "load", "root": root, "function": "hello", "instance": "pod-1", "env": {"MARKER": "/dev/null"}})
    assert loaded["type"] == "loaded"
    assert loaded["kind"] == "routes"
    assert loaded["ms"] > 0
    assert loaded["routes"] == ["POST /", "GET /hint", "GET /wait-sync", "GET /block-loop"]
    assert loaded["schedules"] == [{"name": "sweep", "cron": "*/10 * * * *", "timezone": "UTC"}]

    status, _, body = runtime.http("POST", "/", headers={"name": "world", "x-request-id": "rt-1"})
    assert (status, body) == (200, b"hello world")
    assert runtime.http("POST", "/_pilotlight/schedule/sweep")[2] == b"swept"

    assert runtime.http("GET", "/hint", headers={"x-request-id": "rt-hint"})[0] == 200
    assert runtime.recv_type("hint") == {"type": "hint", "saturated": True, "request_id": "rt-hint"}

    again = runtime.ask({"type": "load", "root": root})
    assert again["type"] == "error"
    assert again["code"] == "PILOTLIGHT_ALREADY_LOADED"

    for _ in range(200):
        if any(line.get("msg") == "function is running" for line in runtime.stdout):
            break
        time.sleep(0.01)
    [line] = [r for r in runtime.stdout if r.get("msg") == "function is running"]
    assert line["request_id"] == "rt-1"
    assert line["function"] == "hello"
    assert line["instance"] == "pod-1"
    assert line["name"] == "world"


@pytest.mark.parametrize(
    ("files", "load", "code", "fragment"),
    [
        ({}, {"root": "/nonexistent/function"}, "PILOTLIGHT_CODE_MISSING", "does not exist"),
        ({"other.py": ""}, {}, "PILOTLIGHT_NO_ENTRYPOINT", "main.py"),
        ({"main.py": "raise RuntimeError('fixture exploded at import')\n"}, {}, "PILOTLIGHT_LOAD_FAILED", "fixture exploded at import"),
        ({"main.py": "value = 42\n"}, {}, "PILOTLIGHT_NO_HANDLER", "nothing to serve"),
        (
            {"main.py": "def initialize():\n    raise OSError('the config file is missing')\ndef handler():\n    return 1\n"},
            {},
            "PILOTLIGHT_INITIALIZER_FAILED",
            "the config file is missing",
        ),
    ],
)
def test_a_failed_load_answers_error_with_code_message_and_stack(runtime, tmp_path, files, load, code, fragment):
    runtime.recv_type("hello")
    root = tmp_path / "fn"
    root.mkdir()
    for name, source in files.items():
        (root / name).write_text(source)
    reply = runtime.ask({"type": "load", "root": str(root), **load})
    assert reply["type"] == "error"
    assert reply["code"] == code
    assert fragment in reply["message"]
    assert isinstance(reply["stack"], str)
    if code == "PILOTLIGHT_LOAD_FAILED":
        assert "main.py" in reply["stack"]
    # Still alive and still generic.
    assert runtime.ask({"type": "ping"})["type"] == "pong"
    assert runtime.http()[0] == 503


def test_a_blocking_def_handler_leaves_the_loop_free_but_a_blocking_async_one_stops_the_pongs(runtime, tmp_path):
    runtime.recv_type("hello")
    assert runtime.ask({"type": "load", "root": function(tmp_path, SERVED), "env": {"MARKER": "/dev/null"}})["type"] == "loaded"
    results: dict[str, Any] = {}

    def call(name: str, path: str) -> threading.Thread:
        thread = threading.Thread(target=lambda: results.__setitem__(name, runtime.http("GET", path)))
        thread.start()
        return thread

    entered, release = str(tmp_path / "sync-entered"), str(tmp_path / "sync-release")
    waiting = call("sync", f"/wait-sync?entered={entered}&release={release}")
    wait_for_file(entered)
    # The def handler is blocked in its thread; the loop still answers pings and other requests.
    assert runtime.ask({"type": "ping"})["type"] == "pong"
    assert runtime.http("POST", "/", headers={"name": "meanwhile"})[2] == b"hello meanwhile"
    open(release, "w").close()
    waiting.join(20)
    assert results["sync"][2] == b"released"

    entered, release = str(tmp_path / "loop-entered"), str(tmp_path / "loop-release")
    blocking = call("loop", f"/block-loop?entered={entered}&release={release}")
    wait_for_file(entered)
    runtime.send({"type": "ping", "id": 500})
    # While the loop is blocked no pong can come: the watchdog would see a hung runtime.
    runtime.control.settimeout(0.5)
    with pytest.raises(TimeoutError):
        runtime.control.recv(1, socket.MSG_PEEK)
    runtime.control.settimeout(20)
    open(release, "w").close()
    assert runtime.recv_type("pong")["id"] == 500
    blocking.join(20)
    assert results["loop"][2] == b"unblocked"


def test_stop_lets_in_flight_requests_finish_then_runs_pre_stop_and_exits_0(runtime, tmp_path):
    runtime.recv_type("hello")
    marker = str(tmp_path / "marker")
    assert runtime.ask({"type": "load", "root": function(tmp_path, SERVED), "env": {"MARKER": marker}})["type"] == "loaded"
    entered, release = str(tmp_path / "entered"), str(tmp_path / "release")
    results: dict[str, Any] = {}

    def in_flight() -> None:
        results["answer"] = runtime.http("GET", f"/wait-sync?entered={entered}&release={release}")
        open(marker + ".served", "w").close()

    thread = threading.Thread(target=in_flight)
    thread.start()
    wait_for_file(entered)
    runtime.send({"type": "stop", "graceMs": 15_000})
    # New connections are refused once stopping began.
    for _ in range(500):
        if not os.path.exists(runtime.socket_path):
            break
        time.sleep(0.01)
    with pytest.raises(OSError):
        runtime.http()
    assert not os.path.exists(marker)
    open(release, "w").close()
    thread.join(20)
    assert results["answer"][0] == 200
    assert runtime.wait() == 0
    assert open(marker).read().startswith("True")
    assert any(line.get("msg") == "pre-stop ran" for line in runtime.stdout)


def test_sigterm_runs_pre_stop_and_exits_0(runtime, tmp_path):
    runtime.recv_type("hello")
    marker = str(tmp_path / "marker")
    assert runtime.ask({"type": "load", "root": function(tmp_path, SERVED), "env": {"MARKER": marker}})["type"] == "loaded"
    runtime.process.send_signal(signal.SIGTERM)
    assert runtime.wait() == 0
    assert open(marker).read() == "True False"


def test_exits_when_the_control_channel_closes(runtime):
    runtime.recv_type("hello")
    runtime.control.shutdown(socket.SHUT_RDWR)
    assert runtime.wait() == 0


@pytest.fixture
def runtime_in_process():
    """What ``Runtime.run`` changes in the process it runs in, put back afterwards."""
    import logging
    import warnings

    from pilotlight import hints
    from pilotlight import logging as plogging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = list(warnings.filters)
    stdout, stderr = sys.stdout, sys.stderr
    yield
    sys.stdout, sys.stderr = stdout, stderr
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    warnings.filters[:] = filters
    hints.set_sink(None)
    plogging.set_destination(fd=2)


def test_the_runtime_keeps_idle_connections_longer_than_the_watchdog_does(runtime_in_process):
    """The watchdog keeps an idle upstream connection up to 10 minutes; a runtime that closed it
    sooner could close it just as the watchdog sends a request on it. Waiting that long is no
    test: this checks the runtime builds its server with the constant (and the server's own idle
    close is tested with a short timeout in test_server.py)."""
    from pilotlight import _runtime

    assert _runtime.IDLE_TIMEOUT_S > 600
    directory = tempfile.mkdtemp(prefix="pl-rt-")
    ours, theirs = socket.socketpair()
    exits: list[int] = []

    async def main():
        runtime = _runtime.Runtime(os.path.join(directory, "runtime.sock"), theirs.detach(), exit=exits.append)
        task = asyncio.get_running_loop().create_task(runtime.run())
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        hello = json.loads(await reader.readline())
        assert hello["type"] == "hello"
        assert runtime.server is not None
        assert runtime.server.idle_timeout == _runtime.IDLE_TIMEOUT_S
        writer.close()
        await task
        runtime.server.close()

    try:
        asyncio.run(asyncio.wait_for(main(), 20))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    assert exits == [0]


UNSENDABLE = """
    from pilotlight import Response, get

    def chunks():
        yield "never"

    @get("/bad-header")
    def bad_header():
        return "body", 200, {"x-bad": "one\\r\\nx-injected: 1"}

    @get("/bad-header-stream")
    async def bad_header_stream():
        return Response(200, chunks(), {"x-bad": "one\\ntwo"})

    @get("/bad-status")
    def bad_status(request):
        return "body", int(request.query["status"])

    @get("/ok")
    def ok():
        return "ok"
"""


def test_an_unsendable_answer_is_a_500_logged_and_the_connection_serves_on(runtime, tmp_path):
    runtime.recv_type("hello")
    assert runtime.ask({"type": "load", "root": function(tmp_path, UNSENDABLE)})["type"] == "loaded"
    conn = UnixConnection(runtime.socket_path)
    answers = []
    try:
        conn.connect()
        sock = conn.sock
        for i, path in enumerate(["/bad-header", "/bad-header-stream", "/bad-status?status=101", "/bad-status?status=42"]):
            conn.request("GET", path, headers={"x-request-id": f"unsendable-{i}"})
            res = conn.getresponse()
            answers.append((res.status, res.getheader("x-injected"), res.read()))
            conn.request("GET", "/ok")
            ok = conn.getresponse()
            assert (ok.status, ok.read()) == (200, b"ok")
        # Every request went over the first connection: none was closed (http.client reconnects
        # by itself after a close).
        assert conn.sock is sock
    finally:
        conn.close()
    assert [(status, injected) for status, injected, _ in answers] == [(500, None)] * 4
    assert all(json.loads(body)["name"] == "InternalServerError" for _, _, body in answers)

    def line(request_id: str) -> dict[str, Any]:
        for _ in range(500):
            found = [r for r in runtime.stdout if r.get("request_id") == request_id and r.get("level") == "error"]
            if found:
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no error line for {request_id}: {runtime.stdout}")

    assert "'x-bad'" in line("unsendable-0")["msg"]
    assert "'x-bad'" in line("unsendable-1")["msg"]
    assert "invalid response status 101" in line("unsendable-2")["msg"]
    assert "invalid response status 42" in line("unsendable-3")["msg"]
    assert runtime.process.poll() is None


PRINTING = """
    import threading
    from pilotlight import get, logger

    THREADS = 8
    LINES = 300
    together = threading.Barrier(THREADS)

    @get("/print")
    def printing(request):
        me = request.query["n"]
        together.wait(10)
        for i in range(LINES):
            # print writes each argument, the separators and the end separately.
            print(f"thread {me} line {i}", "with", "several", "arguments")
            if i % 50 == 0:
                logger.info("between prints", thread=me, i=i)
        return "printed"

    @get("/done")
    def done():
        logger.info("all printed")
        return "done"
"""


def test_prints_from_concurrent_def_handlers_come_out_as_whole_lines(runtime, tmp_path):
    runtime.recv_type("hello")
    assert runtime.ask({"type": "load", "root": function(tmp_path, PRINTING)})["type"] == "loaded"
    threads, lines = 8, 300
    results: list[Any] = []
    callers = [threading.Thread(target=lambda n=n: results.append(runtime.http("GET", f"/print?n={n}"))) for n in range(threads)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(30)
    assert [status for status, _, _ in results] == [200] * threads
    # Written after everything else on the same pipe: once it is read, so is all that came before.
    assert runtime.http("GET", "/done")[0] == 200
    for _ in range(2000):
        if any(r.get("msg") == "all printed" for r in runtime.stdout):
            break
        time.sleep(0.01)
    expected = [f"thread {n} line {i} with several arguments" for n in range(threads) for i in range(lines)]
    # Every line the harness could not parse as JSON went to runtime.stderr (with the real stderr):
    # each one must be a whole printed line, and every printed line must be there once.
    assert sorted(runtime.stderr) == sorted(expected)
    assert len([r for r in runtime.stdout if r.get("msg") == "between prints"]) == threads * (lines // 50)


ENV_ECHO = """
    import os

    def handler(request):
        return {"value": os.environ.get("LOAD_TEST_VALUE"), "other": os.environ.get("LOAD_TEST_OTHER")}
"""


@pytest.mark.parametrize(
    ("load", "fragments"),
    [
        ({"env": {"LOAD_TEST_VALUE": None}}, ["env 'LOAD_TEST_VALUE' must be a string; got null", "leave the variable out"]),
        ({"env": {"LOAD_TEST_VALUE": 5}}, ["env 'LOAD_TEST_VALUE' must be a string; got the number 5"]),
        ({"env": {"A=B": "x"}}, ["env name 'A=B' must be non-empty, without \"=\" or NUL"]),
        ({"env": {"LOAD_TEST_VALUE": "nul\u0000"}}, ["env 'LOAD_TEST_VALUE' must not contain NUL"]),
        ({"env": ["LOAD_TEST_VALUE=1"]}, ['"env" must be an object of strings; got an array']),
        ({"entrypoint": 42}, ['"entrypoint" must be a string; got the number 42']),
        ({"entrypoint": ["main.py"], "function": {"name": "x"}}, ['"entrypoint" must be a string; got an array', '"function" must be a string; got an object']),
        ({"root": None}, ['"root" must be the code\'s directory, a non-empty string; got null']),
        ({"root": 7}, ['"root" must be the code\'s directory, a non-empty string; got the number 7']),
    ],
    ids=["env-null", "env-number", "env-name-with-equals", "env-nul", "env-array", "entrypoint-number", "entrypoint-and-function", "root-null", "root-number"],
)
def test_a_malformed_load_is_refused_with_its_reason_and_the_runtime_stays_generic(runtime, tmp_path, load, fragments):
    runtime.recv_type("hello")
    root = function(tmp_path, ENV_ECHO)
    reply = runtime.ask({"type": "load", "root": root, **load})
    assert reply["type"] == "error"
    assert reply["code"] == "PILOTLIGHT_BAD_LOAD"
    assert reply["message"].startswith("the load message is malformed: ")
    for fragment in fragments:
        assert fragment in reply["message"]
    assert runtime.http()[0] == 503
    # Nothing of it was applied: a good load afterwards sees none of the refused env.
    loaded = runtime.ask({"type": "load", "root": root, "env": {"LOAD_TEST_OTHER": "set"}})
    assert loaded["type"] == "loaded"
    status, _, body = runtime.http()
    assert (status, json.loads(body)) == (200, {"value": None, "other": "set"})
