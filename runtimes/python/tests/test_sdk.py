"""The SDK as a function author uses it, through ``pilotlight.testing`` (the runtime's own
serving path, without a socket)."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import sys
import textwrap
import time
import types
import uuid

import pytest

import pilotlight
from pilotlight import HTTPError, NotFoundError, Request, Response, current_context, hints
from pilotlight.serve import FunctionShapeError
from pilotlight.testing import invoke, invoke_async, served

_names = itertools.count()


def module(source: str) -> types.ModuleType:
    """A function module made from source, under a name of its own."""
    name = f"sdk_fixture_{next(_names)}"
    mod = types.ModuleType(name)
    mod.__file__ = f"<{name}>"
    sys.modules[name] = mod
    exec(compile(textwrap.dedent(source), mod.__file__, "exec"), mod.__dict__)
    return mod


ROUTES = module(
    """
    import asyncio
    from pilotlight import get, post, route, delete, Response, NotFoundError

    @post("/")
    def hello(request, context):
        return f"hello {request.header('name')}"

    @get("/items/{item_id}")
    async def item(request, item_id):
        return {"item": item_id, "params": request.params}

    @get("/users/{user}/posts/{post}")
    def nested(user, post, request):
        return [user, post, request.path]

    @route(["PUT", "PATCH"], "/things/")
    def things(request):
        return {"method": request.method, "body": request.json()}

    @get("/query")
    def query(request):
        return {"query": request.query, "all": request.query_params}

    @delete("/none")
    def nothing():
        return None

    @get("/bytes")
    def raw():
        return b"\\x00\\x01"

    @get("/created")
    def created():
        return {"id": 1}, 201, {"location": "/things/1"}

    @get("/response")
    def response():
        return Response(202, "accepted", {"content-type": "text/x-custom", "set-cookie": "a=1"})

    @get("/sync-stream")
    def sync_stream():
        for i in range(3):
            yield f"line {i}\\n"

    @get("/async-stream")
    async def async_stream():
        for i in range(3):
            await asyncio.sleep(0)
            yield {"n": i}

    @get("/stream-fails-at-once")
    def fails_at_once():
        raise NotFoundError("nothing to stream")
        yield b"never"

    @get("/file")
    def file():
        import io
        return Response(200, io.BytesIO(b"x" * 100_000), {"content-type": "application/x-file"})

    @route("*", "/any")
    def anything(request):
        return request.method
    """
)


class TestRouting:
    def test_a_decorated_route_gets_request_and_context(self):
        res = invoke(ROUTES, "POST", "/", headers={"name": "world"})
        assert (res.status, res.text) == (200, "hello world")
        assert res.headers["content-type"] == "text/plain; charset=utf-8"

    def test_placeholders_arrive_as_params_and_keyword_arguments(self):
        assert invoke(ROUTES, "GET", "/items/42").json() == {"item": "42", "params": {"item_id": "42"}}
        assert invoke(ROUTES, "GET", "/users/ada/posts/7").json() == ["ada", "7", "/users/ada/posts/7"]

    def test_placeholders_are_percent_decoded(self):
        assert invoke(ROUTES, "GET", "/items/a%20b").json()["item"] == "a b"

    def test_several_methods_and_trailing_slashes(self):
        assert invoke(ROUTES, "PUT", "/things", body={"a": 1}).json() == {"method": "PUT", "body": {"a": 1}}
        assert invoke(ROUTES, "PATCH", "/things/", body={"a": 2}).json() == {"method": "PATCH", "body": {"a": 2}}
        assert invoke(ROUTES, "GET", "/items/1/").status == 200

    def test_query_parameters(self):
        res = invoke(ROUTES, "GET", "/query?a=1&b=2&a=3&empty=")
        assert res.json() == {"query": {"a": "1", "b": "2", "empty": ""}, "all": {"a": ["1", "3"], "b": ["2"], "empty": [""]}}

    def test_an_unknown_path_is_404_and_a_wrong_method_405_with_allow(self):
        missing = invoke(ROUTES, "GET", "/nowhere")
        assert missing.status == 404
        assert missing.json() == {"name": "NotFoundError", "message": "no route for GET /nowhere"}
        wrong = invoke(ROUTES, "DELETE", "/things")
        assert wrong.status == 405
        assert wrong.headers["allow"] == "PUT, PATCH"

    def test_get_routes_answer_head_without_a_body(self):
        res = invoke(ROUTES, "HEAD", "/items/1")
        assert res.status == 200
        assert res.body == b""

    def test_a_wildcard_method(self):
        assert invoke(ROUTES, "OPTIONS", "/any").text == "OPTIONS"

    def test_invalid_json_body_is_a_400(self):
        res = invoke(ROUTES, "PUT", "/things", body="{not json")
        assert res.status == 400
        assert res.json()["name"] == "BadRequestError"
        assert "not valid JSON" in res.json()["message"]

    def test_a_body_nested_too_deeply_to_parse_is_a_400_too(self):
        # json.loads raises RecursionError here, not ValueError: still the client's fault.
        res = invoke(ROUTES, "PUT", "/things", body="[" * 100_000)
        assert res.status == 400
        assert res.json()["name"] == "BadRequestError"
        assert "not valid JSON" in res.json()["message"]

    def test_decorators_refuse_bad_arguments(self):
        with pytest.raises(ValueError):
            pilotlight.route("GET", "no-slash")
        with pytest.raises(ValueError):
            pilotlight.route("get me", "/")
        with pytest.raises(ValueError):
            pilotlight.get("/items/{not valid}")
        with pytest.raises(TypeError):
            pilotlight.get("/")(42)


class TestResults:
    def test_none_is_204(self):
        res = invoke(ROUTES, "DELETE", "/none")
        assert (res.status, res.body) == (204, b"")

    def test_bytes_are_octet_stream(self):
        res = invoke(ROUTES, "GET", "/bytes")
        assert res.body == b"\x00\x01"
        assert res.headers["content-type"] == "application/octet-stream"

    def test_dicts_and_lists_are_json(self):
        res = invoke(ROUTES, "GET", "/items/1")
        assert res.headers["content-type"] == "application/json; charset=utf-8"

    def test_a_tuple_sets_status_and_headers(self):
        res = invoke(ROUTES, "GET", "/created")
        assert (res.status, res.json(), res.headers["location"]) == (201, {"id": 1}, "/things/1")

    def test_a_response_keeps_its_status_headers_and_content_type(self):
        res = invoke(ROUTES, "GET", "/response")
        assert (res.status, res.text) == (202, "accepted")
        assert res.headers["content-type"] == "text/x-custom"
        assert res.headers["set-cookie"] == "a=1"

    def test_generators_stream(self):
        assert invoke(ROUTES, "GET", "/sync-stream").text == "line 0\nline 1\nline 2\n"
        res = invoke(ROUTES, "GET", "/async-stream")
        assert res.text == '{"n":0}\n{"n":1}\n{"n":2}\n'
        assert res.headers["content-type"] == "application/octet-stream"

    def test_a_stream_that_fails_before_its_first_chunk_keeps_its_error_status(self):
        res = invoke(ROUTES, "GET", "/stream-fails-at-once")
        assert res.status == 404
        assert res.json()["message"] == "nothing to stream"

    def test_a_file_object_streams_in_blocks(self):
        res = invoke(ROUTES, "GET", "/file")
        assert len(res.body) == 100_000
        assert res.headers["content-type"] == "application/x-file"

    def test_response_checks_its_status(self):
        with pytest.raises(TypeError, match="status must be an int"):
            Response("hello")  # type: ignore[arg-type]
        for status in (42, 100, 101, 199, 600, 1000):
            with pytest.raises(ValueError, match="not a final HTTP status"):
                Response(status)
        assert Response(599).status == 599


UNSENDABLE = module(
    """
    from pilotlight import HTTPError, Response

    started = []

    def stream():
        started.append(True)
        yield "never"

    def handler(request):
        kind, value = request.query["kind"], request.query.get("value", "")
        if kind == "tuple-status":
            return "body", int(value)
        if kind == "response-status":
            response = Response(200, "body")
            response.status = value if value == "abc" else int(value)
            return response
        if kind == "none-status":
            return None, int(value)
        if kind == "stream-status":
            return stream(), int(value)
        bad = {"x-bad": "one\\r\\nx-injected: 1"} if kind.endswith("value") else {"bad name": "v"}
        if kind.startswith("tuple"):
            return "body", 200, bad
        if kind.startswith("response"):
            return Response(201, {"a": 1}, bad)
        if kind.startswith("stream"):
            return Response(200, stream(), bad)
        if kind.startswith("error"):
            raise HTTPError(409, "taken", headers=bad)
        raise AssertionError(kind)
    """
)


class TestUnsendableResults:
    """What HTTP cannot carry is a 500, logged with what was wrong, before any of it is sent."""

    @pytest.mark.parametrize(
        ("kind", "value"),
        [
            ("tuple-status", "101"),
            ("tuple-status", "100"),
            ("tuple-status", "199"),
            ("tuple-status", "42"),
            ("tuple-status", "1000"),
            ("tuple-status", "600"),
            ("response-status", "103"),
            ("response-status", "abc"),
            ("none-status", "102"),
            ("stream-status", "101"),
        ],
    )
    def test_a_status_that_is_not_final_is_a_500(self, log_lines, kind, value):
        UNSENDABLE.started.clear()
        res = invoke(UNSENDABLE, path=f"/?kind={kind}&value={value}", headers={"x-request-id": f"st-{kind}-{value}"})
        assert res.status == 500
        assert res.json() == {"name": "InternalServerError", "message": "the function failed; see its logs"}
        [line] = [r for r in log_lines() if r.get("request_id") == f"st-{kind}-{value}"]
        assert line["level"] == "error"
        shown = repr(value) if value == "abc" else value
        assert f"invalid response status {shown}: a final status is an integer from 200 to 599" in line["msg"]
        assert UNSENDABLE.started == []

    @pytest.mark.parametrize("kind", ["tuple", "response", "stream", "error"])
    @pytest.mark.parametrize("what", ["value", "name"])
    def test_a_header_that_cannot_be_sent_is_a_500_naming_it(self, log_lines, kind, what):
        UNSENDABLE.started.clear()
        res = invoke(UNSENDABLE, path=f"/?kind={kind}-{what}", headers={"x-request-id": f"hd-{kind}-{what}"})
        assert res.status == 500
        assert "x-injected" not in res.headers
        assert "bad name" not in res.headers
        assert res.json()["name"] == "InternalServerError"
        [line] = [r for r in log_lines() if r.get("request_id") == f"hd-{kind}-{what}"]
        assert line["level"] == "error"
        assert ("'x-bad'" if what == "value" else "'bad name'") in line["msg"]
        assert UNSENDABLE.started == []
        if kind == "error":
            # The HTTP error it replaces is kept as the cause.
            assert "HTTPError: taken" in line["err"]["stack"]

    def test_final_statuses_pass(self):
        assert invoke(UNSENDABLE, path="/?kind=tuple-status&value=599").status == 599
        assert invoke(UNSENDABLE, path="/?kind=response-status&value=200").text == "body"


ERRORS = module(
    """
    from pilotlight import BadRequestError, HTTPError, NotFoundError

    class Teapot(Exception):
        status = 418

    def handler(request, context):
        if request.path == "/missing":
            raise NotFoundError("no widget 42")
        if request.path == "/invalid":
            raise BadRequestError("the widget is malformed", errors=[{"property": "name"}])
        if request.path == "/custom":
            raise HTTPError(409, "taken", headers={"retry-after": "3"})
        if request.path == "/teapot":
            raise Teapot("short and stout")
        raise ValueError("the database password is hunter2")
    """
)


class TestErrors:
    def test_http_errors_keep_status_name_message_and_errors(self):
        missing = invoke(ERRORS, path="/missing")
        assert missing.status == 404
        assert missing.json() == {"name": "NotFoundError", "message": "no widget 42"}
        invalid = invoke(ERRORS, path="/invalid")
        assert invalid.status == 400
        assert invalid.json() == {"name": "BadRequestError", "message": "the widget is malformed", "errors": [{"property": "name"}]}
        custom = invoke(ERRORS, path="/custom")
        assert (custom.status, custom.json()["name"], custom.headers["retry-after"]) == (409, "HTTPError", "3")

    def test_an_exception_with_a_status_attribute_keeps_it(self):
        assert invoke(ERRORS, path="/teapot").status == 418

    def test_other_exceptions_are_opaque_500s_logged_with_traceback_and_ids(self, log_lines):
        res = invoke(ERRORS, path="/boom", headers={"x-request-id": "boom-1"})
        assert res.status == 500
        assert res.json() == {"name": "InternalServerError", "message": "the function failed; see its logs"}
        assert "hunter2" not in res.text
        [line] = [r for r in log_lines() if r.get("request_id") == "boom-1"]
        assert line["level"] == "error"
        assert line["err"]["type"] == "ValueError"
        assert line["err"]["message"] == "the database password is hunter2"
        assert "Traceback" in line["err"]["stack"]
        assert ERRORS.__file__ in line["err"]["stack"]

    def test_debug_puts_name_message_and_stack_in_the_body(self, monkeypatch):
        monkeypatch.setenv("PILOTLIGHT_DEBUG", "true")
        body = invoke(ERRORS, path="/boom").json()
        assert body["name"] == "ValueError"
        assert body["message"] == "the database password is hunter2"
        assert "hunter2" in body["stack"]
        assert invoke(ERRORS, path="/missing").json()["name"] == "NotFoundError"

    def test_http_error_checks_its_status(self):
        with pytest.raises(ValueError):
            HTTPError(200, "not an error")
        assert NotFoundError().message == "not found"


CONTEXT = module(
    """
    import asyncio
    from pilotlight import current_context, get

    @get("/sync")
    def in_thread(request, context):
        return {**context.to_dict(), "same": current_context() is context}

    @get("/async")
    async def on_loop(request, context):
        await asyncio.sleep(0)
        return {**context.to_dict(), "same": current_context() is context}
    """
)


class TestContext:
    @pytest.mark.parametrize("path", ["/sync", "/async"])
    def test_the_request_id_and_a_child_span_of_the_callers_trace(self, path):
        trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        ctx = invoke(CONTEXT, path=path, headers={"x-request-id": "req-1", "traceparent": f"00-{trace_id}-{parent}-01"}).json()
        assert ctx["request_id"] == "req-1"
        assert ctx["trace_id"] == trace_id
        assert re.fullmatch(r"[0-9a-f]{16}", ctx["span_id"]) and ctx["span_id"] != parent
        assert ctx["trace_flags"] == "01"
        assert ctx["traceparent"] == f"00-{trace_id}-{ctx['span_id']}-01"
        assert ctx["same"] is True
        assert ctx["function_name"] == "test"
        assert ctx["instance_id"] == "test"

    def test_keeps_unsampled_flags(self):
        ctx = invoke(CONTEXT, path="/sync", headers={"traceparent": f"00-{'a' * 32}-{'b' * 16}-00"}).json()
        assert ctx["trace_flags"] == "00"

    @pytest.mark.parametrize("traceparent", [None, "garbage", f"00-{'0' * 32}-{'1' * 16}-01", f"01-{'a' * 32}-{'b' * 16}-01"])
    def test_starts_a_trace_without_a_valid_traceparent(self, traceparent):
        headers = {"traceparent": traceparent} if traceparent else {}
        ctx = invoke(CONTEXT, path="/sync", headers=headers).json()
        assert re.fullmatch(r"[0-9a-f]{32}", ctx["trace_id"]) and ctx["trace_id"] != "0" * 32
        assert uuid.UUID(ctx["request_id"]).version == 4

    def test_a_deadline_and_the_time_remaining(self):
        before = time.time() * 1000
        ctx = invoke(CONTEXT, path="/sync", timeout_ms=5_000).json()
        assert before + 4_000 < ctx["deadline"] <= time.time() * 1000 + 5_000
        assert 0 < ctx["remaining_ms"] <= 5_000

    def test_no_deadline_is_unlimited(self):
        ctx = invoke(CONTEXT, path="/sync").json()
        assert ctx["deadline"] is None
        assert ctx["remaining_ms"] is None

    def test_no_context_outside_an_invocation(self):
        assert current_context() is None

    def test_remaining_ms_is_infinite_without_deadline(self):
        from pilotlight.context import FunctionInfo, create_context

        context = create_context({}, FunctionInfo())
        assert context.remaining_ms() == math.inf
        assert create_context({"x-pilotlight-deadline": "nonsense"}, FunctionInfo()).deadline is None


class TestPlainHandlers:
    def test_a_plain_function(self):
        def handler(request, context):
            return {"path": request.path, "id": context.request_id}

        assert invoke(handler, path="/x", headers={"x-request-id": "p-1"}).json() == {"path": "/x", "id": "p-1"}

    def test_a_handler_may_take_fewer_arguments(self):
        assert invoke(lambda: "none").text == "none"
        assert invoke(lambda request: request.method, "PATCH").text == "PATCH"

    def test_a_module_with_handler_or_main(self):
        assert invoke(module("def handler(request, context):\n    return 'h'\n")).text == "h"
        assert invoke(module("async def main(request):\n    return 'm'\n")).text == "m"

    def test_a_module_with_nothing_to_serve(self):
        with pytest.raises(FunctionShapeError) as refused:
            invoke(module("x = 1\n"))
        assert refused.value.code == "PILOTLIGHT_NO_HANDLER"


class TestHooks:
    def test_initializers_run_once_before_the_first_request(self):
        mod = module(
            """
            from pilotlight import initializer
            calls = []

            @initializer
            async def connect():
                calls.append("async")

            def initialize():
                calls.append("plain")

            def handler():
                return list(calls)
            """
        )
        assert invoke(mod).json() == ["async", "plain"]
        assert invoke(mod).json() == ["async", "plain"]

    def test_a_failing_initializer(self):
        mod = module(
            """
            from pilotlight import initializer

            @initializer()
            def broken():
                raise RuntimeError("the config file is missing")

            def handler():
                return "never"
            """
        )
        with pytest.raises(FunctionShapeError) as refused:
            invoke(mod)
        assert refused.value.code == "PILOTLIGHT_INITIALIZER_FAILED"
        assert "the config file is missing" in refused.value.message

    def test_pre_stop_hooks_get_the_time_left_and_failures_are_contained(self, log_lines):
        mod = module(
            """
            from pilotlight import pre_stop
            seen = []

            @pre_stop
            def first(info):
                seen.append(info.remaining_ms())

            @pre_stop
            def broken():
                raise RuntimeError("flush failed")

            async def pre_stop(info):
                seen.append(("last", info.deadline is not None))

            def handler():
                return "ok"
            """
        )

        async def main():
            function = await served(mod)
            await function.pre_stop(2_000)

        asyncio.run(main())
        assert 0 < mod.seen[0] <= 2_000
        assert mod.seen[1] == ("last", True)
        assert any(r["level"] == "error" and "flush failed" in r["msg"] for r in log_lines())


SCHEDULED = module(
    """
    from pilotlight import get, schedule

    @schedule("*/5 * * * *", name="cleanup")
    def cleanup(context):
        return {"ran": "cleanup", "request_id": context.request_id}

    @get("/")
    def index():
        return "index"
    """
)


class TestSchedules:
    def test_published(self):
        async def main():
            return (await served(SCHEDULED)).schedules

        assert asyncio.run(main()) == [{"name": "cleanup", "cron": "*/5 * * * *", "timezone": "UTC"}]

    def test_triggered_by_path_header_or_a_connectors_marks(self):
        assert invoke(SCHEDULED, "POST", "/_pilotlight/schedule/cleanup").json()["ran"] == "cleanup"
        assert invoke(SCHEDULED, "POST", "/", headers={"x-pilotlight-schedule": "cleanup"}).json()["ran"] == "cleanup"
        assert invoke(SCHEDULED, "POST", "/", headers={"ce-type": "dev.knative.sources.ping"}).json()["ran"] == "cleanup"
        assert invoke(SCHEDULED, "GET", "/", headers={"user-agent": "openfaas-cron-connector/1"}).json()["ran"] == "cleanup"

    def test_other_requests_are_routed(self):
        assert invoke(SCHEDULED, "GET", "/").text == "index"
        assert invoke(SCHEDULED, "POST", "/_pilotlight/schedule/unknown").status == 404

    def test_a_connectors_marks_are_ambiguous_with_two_schedules(self):
        mod = module(
            """
            from pilotlight import schedule

            @schedule("@hourly")
            def hourly():
                return "hourly"

            @schedule("@daily", timezone="UTC")
            def daily():
                return "daily"

            def handler():
                return "handler"
            """
        )
        assert invoke(mod, headers={"ce-type": "dev.knative.sources.ping"}).text == "handler"
        assert invoke(mod, path="/_pilotlight/schedule/daily").text == "daily"


class TestHints:
    def test_go_to_the_sink_with_the_request_id(self):
        got = []
        hints.set_sink(got.append)
        try:

            def handler(request, context):
                hints.saturated(True)
                hints.load(3, "queue")
                return "ok"

            invoke(handler, headers={"x-request-id": "hint-1"})
            hints.load(0.5)
        finally:
            hints.set_sink(None)
        assert got == [
            {"saturated": True, "request_id": "hint-1"},
            {"load": 3, "metric": "queue", "request_id": "hint-1"},
            {"load": 0.5},
        ]

    def test_without_a_sink_they_are_log_lines_the_watchdog_reads(self, log_lines):
        hints.saturated(False)
        assert log_lines()[-1] == {"pilotlight": "hint", "saturated": False}

    @pytest.mark.parametrize("bad", [math.nan, math.inf, "3", True])
    def test_load_needs_a_finite_number(self, bad):
        with pytest.raises((TypeError, ValueError)):
            hints.load(bad)

    def test_saturated_needs_a_bool(self):
        with pytest.raises(TypeError):
            hints.saturated(1)  # type: ignore[arg-type]


class TestRequest:
    def test_from_target(self):
        request = Request.from_target("post", "/a%2Fb/c?x=1", {"Content-Type": "text/plain"}, b'{"a": 1}')
        assert request.method == "POST"
        assert request.path == "/a/b/c"
        assert request.raw_path == "/a%2Fb/c"
        assert request.url == "/a%2Fb/c?x=1"
        assert request.header("content-type") == "text/plain"
        assert request.json() == {"a": 1}
        assert request.text() == '{"a": 1}'

    def test_absolute_form_targets_keep_the_path(self):
        assert Request.from_target("GET", "http://example.com/p?q=1").path == "/p"


def test_invoke_async_inside_a_loop():
    async def main():
        with pytest.raises(RuntimeError, match="invoke_async"):
            invoke(lambda: "x")
        return await invoke_async(lambda: "inside")

    assert asyncio.run(main()).text == "inside"

