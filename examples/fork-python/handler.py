#!/usr/bin/env python3
"""A fork-mode function as a plain Python script (no SDK needed): one process per request, the
body on stdin, the answer on stdout. The watchdog passes the request as environment variables,
named as of-watchdog names them: Http_Method, Http_Path, Http_Query and one Http_<Header> per
header (Content-Type → Http_Content_Type), plus TRACEPARENT for the trace.

It greets whoever the ``name`` header or query parameter names and sums the numbers of a JSON
body: POST {"numbers": [1, 2, 3]} with ``name: ada`` → {"greeting": "hello ada", "sum": 6, …}.
"""

import json
import os
import sys
from urllib.parse import parse_qs


def main() -> int:
    method = os.environ.get("Http_Method", "GET")
    path = os.environ.get("Http_Path", "/")
    query = {k: v[0] for k, v in parse_qs(os.environ.get("Http_Query", "")).items()}
    name = os.environ.get("Http_Name") or query.get("name") or "world"
    body = sys.stdin.buffer.read()

    numbers = []
    if body:
        try:
            numbers = json.loads(body).get("numbers", [])
        except (ValueError, AttributeError):
            # stderr is logged by the watchdog with this request's id; a non-zero exit is a 500.
            print(json.dumps({"level": "error", "msg": "the body is not a JSON object", "bytes": len(body)}), file=sys.stderr)
            return 1
    if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
        print(json.dumps({"level": "error", "msg": "numbers must be numbers"}), file=sys.stderr)
        return 1

    answer = {
        "greeting": f"hello {name}",
        "method": method,
        "path": path,
        "query": query,
        "content_type": os.environ.get("Http_Content_Type"),
        "trace": os.environ.get("TRACEPARENT"),
        "sum": sum(numbers),
        "count": len(numbers),
    }
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
