"""The platform logger: pino's fields, and the invocation's ids on every line under concurrency —
asyncio tasks interleaving at awaits, handler threads, threads the function starts itself."""

from __future__ import annotations

import asyncio
import json
import logging as stdlib_logging
import re
import threading
import types

import pytest

from pilotlight import get_logger, logger
from pilotlight import logging as plogging
from pilotlight.testing import invoke, invoke_async

CONCURRENT = 50
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def json_root_logging():
    """The root logger writing JSON lines for one test (as the runtime sets it up), then restored."""
    root = stdlib_logging.getLogger()
    handlers, level = list(root.handlers), root.level
    plogging.install()
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    stdlib_logging.captureWarnings(False)


def trace(n: int) -> tuple[str, str]:
    trace_id = f"{n:032x}".replace("0", "a", 1)
    return trace_id, f"00-{trace_id}-{'1' * 16}-01"


def check_invocations(records: list[dict], lines_per_invocation: int, prefix: str) -> None:
    by_n: dict[str, list[dict]] = {}
    for record in records:
        if "n" in record:
            by_n.setdefault(record["n"], []).append(record)
    assert len(by_n) == CONCURRENT
    spans = set()
    for n, lines in by_n.items():
        assert len(lines) == lines_per_invocation, n
        trace_id, _ = trace(int(n))
        for line in lines:
            assert line["request_id"] == f"{prefix}-{n}"
            assert line["trace_id"] == trace_id
            assert line["trace_flags"] == "01"
            assert line["function"] == "logs"
            assert line["instance"] == "test"
        assert len({line["span_id"] for line in lines}) == 1
        spans.add(lines[0]["span_id"])
    assert len(spans) == CONCURRENT


def test_concurrent_asyncio_invocations_each_log_their_own_ids(log_lines):
    async def main():
        gate = asyncio.Event()

        async def handler(request, context):
            n = request.query["n"]
            logger.info("before", n=n, via="logger")
            context.logger.info("before", n=n, via="ctx")
            # Every invocation is suspended here at once, so their lines interleave.
            await gate.wait()
            logger.info("after", n=n, via="logger")
            await asyncio.sleep(0)
            context.logger.info("after", n=n, via="ctx")
            return n

        tasks = [
            asyncio.ensure_future(
                invoke_async(handler, path=f"/?n={n}", headers={"x-request-id": f"async-{n}", "traceparent": trace(n)[1]}, function_name="logs")
            )
            for n in range(CONCURRENT)
        ]
        for _ in range(20):
            await asyncio.sleep(0)
        gate.set()
        return [r.text for r in await asyncio.gather(*tasks)]

    assert asyncio.run(main()) == [str(n) for n in range(CONCURRENT)]
    check_invocations(log_lines(), 4, "async")


def test_concurrent_handler_threads_each_log_their_own_ids(log_lines, json_root_logging):
    barrier = threading.Barrier(CONCURRENT, timeout=20)
    loose = stdlib_logging.getLogger("sdk.test.threads")

    def handler(request, context):
        n = request.query["n"]
        logger.info("before", n=n)
        # All handlers run at once in the pool, each in its own thread.
        barrier.wait()
        context.logger.info("after", n=n)
        loose.info("stdlib", extra={"n": n})
        return threading.current_thread().name

    async def main():
        return await asyncio.gather(
            *(
                invoke_async(handler, path=f"/?n={n}", headers={"x-request-id": f"thread-{n}", "traceparent": trace(n)[1]}, function_name="logs")
                for n in range(CONCURRENT)
            )
        )

    threads = {r.text for r in asyncio.run(main())}
    assert len(threads) == CONCURRENT
    records = log_lines()
    check_invocations(records, 3, "thread")
    assert all(r["logger"] == "sdk.test.threads" for r in records if r["msg"] == "stdlib")


def test_the_context_logger_keeps_its_ids_in_a_thread_the_function_starts(log_lines):
    def handler(request, context):
        def work():
            context.logger.info("from my own thread")
            logger.info("plain logger in my own thread")

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        return "ok"

    invoke(handler, headers={"x-request-id": "own-thread"})
    own, plain = log_lines()
    assert own["request_id"] == "own-thread"
    # contextvars do not follow a bare thread: only the context's logger carries the ids there.
    assert "request_id" not in plain


def test_lines_outside_an_invocation_carry_no_ids(log_lines):
    logger.info("at import")
    [line] = log_lines()
    assert set(line) == {"level", "time", "msg"}


def test_the_fields_and_their_order(log_lines):
    logger.warn("disk is %d%% full", 91, disk="/", nested={"a": [1, 2]})
    [line] = log_lines()
    assert list(line) == ["level", "time", "disk", "nested", "msg"]
    assert line["level"] == "warn"
    assert ISO.match(line["time"])
    assert line["msg"] == "disk is 91% full"
    assert line["nested"] == {"a": [1, 2]}


def test_a_mapping_first_as_in_pino(log_lines):
    logger.info({"n": 1}, "with fields")
    assert log_lines()[0]["n"] == 1
    assert log_lines()[0]["msg"] == "with fields"


def test_errors_and_odd_values_are_serialized(log_lines):
    try:
        raise KeyError("missing")
    except KeyError:
        logger.exception("caught", when=b"bytes", items={1, 2}, obj=object())
    [line] = log_lines()
    assert line["level"] == "error"
    assert line["err"]["type"] == "KeyError"
    assert "Traceback" in line["err"]["stack"]
    assert line["when"] == "bytes"
    assert sorted(line["items"]) == [1, 2]
    assert line["obj"].startswith("<object object")


def test_a_value_nested_too_deeply_to_write_keeps_the_line_and_says_why(log_lines):
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    logger.info("with a deep value", deep=deep)
    [line] = log_lines()
    assert line["msg"] == "with a deep value"
    assert "recursion" in line["log_error"]


def test_levels_names_and_children(log_lines, monkeypatch):
    named = get_logger("orders", component="db")
    child = named.child(table="orders")
    child.debug("hidden at info")
    child.info("shown")
    monkeypatch.setenv("PILOTLIGHT_FUNCTION_LOG_LEVEL", "debug")
    plogging.refresh_level()
    try:
        child.debug("shown at debug")
    finally:
        monkeypatch.delenv("PILOTLIGHT_FUNCTION_LOG_LEVEL")
        plogging.refresh_level()
    lines = log_lines()
    assert [line["msg"] for line in lines] == ["shown", "shown at debug"]
    assert lines[0]["name"] == "orders"
    assert lines[0]["component"] == "db"
    assert lines[0]["table"] == "orders"
    with pytest.raises(ValueError):
        plogging.Logger(level="loud")


def test_stdlib_logging_writes_the_same_lines(log_lines, json_root_logging):
    stdlib_logging.getLogger("app.db").warning("slow query %s", "select 1", extra={"ms": 1500})

    def handler(request, context):
        stdlib_logging.getLogger("app").info("inside")
        return "ok"

    invoke(handler, headers={"x-request-id": "stdlib-1"})
    first, second = log_lines()
    assert first["level"] == "warn"
    assert first["logger"] == "app.db"
    assert first["ms"] == 1500
    assert first["msg"] == "slow query select 1"
    assert second["request_id"] == "stdlib-1"


def test_lines_from_many_threads_never_interleave(log_lines):
    long = "x" * 20_000

    def spam(i):
        for j in range(200):
            logger.info(long, thread=i, j=j)

    threads = [threading.Thread(target=spam, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = log_lines()
    assert len(lines) == 1600
    assert all(line["msg"] == long for line in lines)


def test_the_log_module_does_not_shadow_the_standard_library():
    assert isinstance(stdlib_logging, types.ModuleType)
    assert stdlib_logging.getLogger is not None
    assert plogging.__name__ == "pilotlight.logging"


@pytest.fixture
def line_writer(tmp_path):
    """A LineWriter over a file; returns it and a reader of the file's lines."""
    path = tmp_path / "out.txt"
    stream = open(path, "a", encoding="utf-8")
    writer = plogging.LineWriter(stream)
    yield writer, lambda: path.read_text(encoding="utf-8")
    stream.close()


def test_a_line_writer_holds_a_threads_text_until_it_ends_its_line(line_writer):
    writer, read = line_writer
    started, other_done = threading.Event(), threading.Event()

    def first():
        writer.write("first thread: ")
        started.set()
        other_done.wait(10)
        writer.write("its line\n")

    def second():
        started.wait(10)
        # Lands between the first thread's two writes: on a plain unbuffered stream the two
        # lines would read "first thread: second thread\nits line\n".
        print("second", "thread", file=writer)
        other_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert read() == "second thread\nfirst thread: its line\n"


def test_lines_printed_from_many_threads_and_log_lines_never_splice(line_writer, tmp_path):
    writer, read = line_writer
    plogging.set_destination(path=str(tmp_path / "out.txt"))
    try:

        def spam(i):
            for j in range(300):
                print(f"thread {i}", "line", j, "of several arguments", file=writer)
                if j % 30 == 0:
                    logger.info("between prints", thread=i, j=j)

        threads = [threading.Thread(target=spam, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        plogging.set_destination(fd=2)
    lines = read().splitlines()
    printed = sorted(line for line in lines if not line.startswith("{"))
    assert printed == sorted(f"thread {i} line {j} of several arguments" for i in range(8) for j in range(300))
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(logged) == 8 * 10
    assert all(record["msg"] == "between prints" for record in logged)


def test_flush_writes_the_callers_unfinished_line_and_flush_all_everyones(line_writer):
    writer, read = line_writer
    writer.write("main, unfinished")
    other = threading.Thread(target=lambda: (writer.write("other, unfinished"), writer.flush()))
    other.start()
    other.join(10)
    assert read() == "other, unfinished"
    writer.write("; then another part")
    writer.flush_all()
    assert read() == "other, unfinishedmain, unfinished; then another part"


def test_a_line_that_never_ends_is_written_once_it_is_long(line_writer):
    writer, read = line_writer
    writer.write("x" * plogging.LineWriter.MAX_PENDING)
    assert read() == ""
    writer.write("y")
    assert read() == "x" * plogging.LineWriter.MAX_PENDING + "y"


def test_a_line_writer_looks_like_the_stream_it_wraps(line_writer):
    writer, _ = line_writer
    assert writer.fileno() == writer.wrapped.fileno()
    assert writer.encoding == "utf-8"
    assert writer.mode == "a"
    assert writer.writable()
    with pytest.raises(TypeError):
        writer.write(b"bytes")  # type: ignore[arg-type]
