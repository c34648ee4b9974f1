#!/bin/sh
# A fork-mode function in plain shell: the request body arrives on stdin, the response is stdout.
# Counts the lines, words and bytes of the body and answers them as JSON; `?upper=1` answers the
# body in upper case instead. The request's method, path, query and headers are in Http_* variables.
set -eu

case "${Http_Query:-}" in
  *upper=1*) exec tr '[:lower:]' '[:upper:]' ;;
esac

# Anything on stderr becomes a log line of the watchdog, tagged with the request id.
echo "counting a ${Http_Method:-?} body for ${Http_Path:-/}" >&2
wc | awk '{ printf "{\"lines\":%d,\"words\":%d,\"bytes\":%d}\n", $1, $2, $3 }'
