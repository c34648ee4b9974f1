#!/usr/bin/env python3
"""File ingest in ``streaming`` mode: the uploaded file arrives on stdin as it is uploaded and is
processed line by line, so memory stays flat whatever its size — 1 GiB or 100 GiB — in this
process and in the watchdog, which streams it through with backpressure.

For each line it counts lines, bytes, blank lines and the longest line, and feeds a SHA-256 of the
whole file; every ``X-Progress-Every`` bytes (header, default 64 MiB) it streams a progress line
back, then a summary. The answer is NDJSON::

    {"progress":{"bytes":67108864,"lines":1048576}}
    …
    {"summary":{"bytes":1073741824,"lines":16777216,"blank_lines":0,"longest_line":63,"sha256":"…"}}

A line longer than 1 MiB is taken in 1 MiB parts (counted as one line), so not even a file
without newlines can make the process hold more than that.
"""

import hashlib
import io
import json
import os
import sys

PART = 1 << 20
DEFAULT_PROGRESS_EVERY = 64 << 20


def emit(out, record) -> None:
    out.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
    out.flush()


def main() -> int:
    try:
        every = int(os.environ.get("Http_X_Progress_Every") or DEFAULT_PROGRESS_EVERY)
    except ValueError:
        every = DEFAULT_PROGRESS_EVERY
    every = max(every, 1)
    source = io.BufferedReader(io.FileIO(0, closefd=False), buffer_size=PART)
    out = sys.stdout.buffer
    digest = hashlib.sha256()
    total = lines = blank = longest = current = 0
    next_progress = every
    readline = source.readline
    update = digest.update
    while True:
        part = readline(PART)
        if not part:
            break
        size = len(part)
        total += size
        update(part)
        current += size
        if part[-1] == 0x0A:
            lines += 1
            length = current - 1
            if length and part[-2:] == b"\r\n":
                length -= 1
            if length == 0:
                blank += 1
            elif length > longest:
                longest = length
            current = 0
        if total >= next_progress:
            emit(out, {"progress": {"bytes": total, "lines": lines}})
            while next_progress <= total:
                next_progress += every
    if current:
        lines += 1
        longest = max(longest, current)
    emit(out, {"summary": {"bytes": total, "lines": lines, "blank_lines": blank, "longest_line": longest, "sha256": digest.hexdigest()}})
    # A log line on stderr: the watchdog records it with the request id.
    sys.stderr.write(json.dumps({"level": "info", "msg": "ingested", "bytes": total, "lines": lines}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
