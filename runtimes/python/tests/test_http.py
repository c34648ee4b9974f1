"""The HTTP/1.1 message syntax: request heads, body framing, response heads, headers."""

from __future__ import annotations

import pytest

from pilotlight._http import Headers, ProtocolError, parse_chunk_size, parse_head, response_head


def head(*lines: str) -> bytes:
    return "\r\n".join(lines).encode("latin-1")


class TestParseHead:
    def test_reads_method_target_version_and_headers(self):
        parsed = parse_head(head("POST /a/b?x=1 HTTP/1.1", "Host: localhost", "Content-Type: text/plain", "Content-Length: 5", "X-Many: 1", "x-many: 2"))
        assert parsed.method == "POST"
        assert parsed.target == "/a/b?x=1"
        assert parsed.version == "HTTP/1.1"
        assert parsed.headers["content-type"] == "text/plain"
        assert parsed.headers.get("CONTENT-TYPE") == "text/plain"
        assert parsed.headers.get_all("x-many") == ["1", "2"]
        assert parsed.content_length == 5
        assert parsed.chunked is False
        assert parsed.has_body is True
        assert parsed.keep_alive is True

    def test_header_values_lose_surrounding_whitespace_only(self):
        parsed = parse_head(head("GET / HTTP/1.1", "X-A:   spaced  value \t"))
        assert parsed.headers["x-a"] == "spaced  value"

    def test_http11_keeps_alive_unless_told_to_close(self):
        assert parse_head(head("GET / HTTP/1.1", "Connection: close")).keep_alive is False
        assert parse_head(head("GET / HTTP/1.1", "Connection: Keep-Alive, Upgrade")).keep_alive is True

    def test_http10_closes_unless_told_to_keep_alive(self):
        assert parse_head(head("GET / HTTP/1.0")).keep_alive is False
        assert parse_head(head("GET / HTTP/1.0", "Connection: keep-alive")).keep_alive is True

    def test_chunked_framing(self):
        parsed = parse_head(head("POST / HTTP/1.1", "Transfer-Encoding: chunked"))
        assert parsed.chunked is True
        assert parsed.has_body is True

    def test_no_framing_means_no_body(self):
        parsed = parse_head(head("POST / HTTP/1.1", "Host: x"))
        assert parsed.has_body is False

    def test_expect_continue(self):
        assert parse_head(head("POST / HTTP/1.1", "Expect: 100-continue", "Content-Length: 3")).expect_continue is True
        with pytest.raises(ProtocolError) as refused:
            parse_head(head("POST / HTTP/1.1", "Expect: something-else"))
        assert refused.value.status == 417

    @pytest.mark.parametrize(
        ("raw", "status"),
        [
            (head("GET /"), 400),
            (head("GET  / HTTP/1.1"), 400),
            (head("G(T / HTTP/1.1"), 400),
            (head("GET / HTTP/2.0"), 505),
            (head("GET / HTXP/1.1"), 400),
            (head("GET / HTTP/1.1", "Bad Header: x"), 400),
            (head("GET / HTTP/1.1", "NoColon"), 400),
            (head("GET / HTTP/1.1", "X-A: 1", " folded"), 400),
            (head("POST / HTTP/1.1", "Content-Length: 5", "Transfer-Encoding: chunked"), 400),
            (head("POST / HTTP/1.1", "Content-Length: 5", "Content-Length: 6"), 400),
            (head("POST / HTTP/1.1", "Content-Length: -1"), 400),
            (head("POST / HTTP/1.1", "Content-Length: 1e3"), 400),
            (head("POST / HTTP/1.1", "Transfer-Encoding: gzip, chunked"), 501),
            (head("POST / HTTP/1.1", "Transfer-Encoding: chunked, gzip"), 501),
            (head("POST / HTTP/1.0", "Transfer-Encoding: chunked"), 400),
        ],
    )
    def test_refuses_what_it_cannot_frame_unambiguously(self, raw, status):
        with pytest.raises(ProtocolError) as refused:
            parse_head(raw)
        assert refused.value.status == status

    def test_repeated_equal_content_lengths_are_one(self):
        assert parse_head(head("POST / HTTP/1.1", "Content-Length: 7", "Content-Length: 7")).content_length == 7


class TestChunkSize:
    def test_hex_sizes_and_extensions(self):
        assert parse_chunk_size(b"1a") == 26
        assert parse_chunk_size(b"FF;name=value") == 255
        assert parse_chunk_size(b"0") == 0

    @pytest.mark.parametrize("line", [b"", b"xyz", b"-1", b"1 2", b"12345678901234567"])
    def test_refuses_malformed_sizes(self, line):
        with pytest.raises(ProtocolError):
            parse_chunk_size(line)


class TestResponseHead:
    def test_status_line_headers_and_blank_line(self):
        out = response_head(201, [("content-type", "text/plain"), ("x-a", "1")])
        assert out == b"HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nx-a: 1\r\n\r\n"

    def test_unknown_status_still_has_a_reason(self):
        assert response_head(299, []).startswith(b"HTTP/1.1 299 Unknown\r\n")

    @pytest.mark.parametrize("header", [("x-a", "one\r\nx-injected: 1"), ("bad name", "v"), ("x-a", "nul\x00")])
    def test_refuses_header_injection(self, header):
        with pytest.raises(ValueError):
            response_head(200, [header])


class TestHeaders:
    def test_case_insensitive_and_ordered(self):
        headers = Headers({"Content-Type": "a", "X-B": "b"})
        headers.add("Set-Cookie", "1")
        headers.add("set-cookie", "2")
        assert headers["content-type"] == "a"
        assert "CONTENT-TYPE" in headers
        assert headers.get_all("Set-Cookie") == ["1", "2"]
        assert list(headers) == ["content-type", "x-b", "set-cookie"]
        assert headers.to_dict()["set-cookie"] == "1, 2"

    def test_set_replaces_and_setdefault_keeps(self):
        headers = Headers([("a", "1"), ("A", "2")])
        headers.set("a", "3")
        assert headers.get_all("a") == ["3"]
        assert headers.setdefault("a", "4") == "3"
        assert headers.setdefault("b", "5") == "5"
        del headers["b"]
        assert "b" not in headers
        with pytest.raises(KeyError):
            headers["b"]

    def test_equality_with_mappings(self):
        assert Headers({"A": "1"}) == {"a": "1"}
        assert Headers({"A": "1"}) == Headers([("a", "1")])
