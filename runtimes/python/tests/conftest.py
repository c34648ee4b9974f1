"""Shared helpers: the package importable from a clean checkout, and a clean module table per test."""

from __future__ import annotations

import os
import sys

import pytest

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(os.path.dirname(PACKAGE_ROOT))
if PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, PACKAGE_ROOT)


@pytest.fixture
def isolated_modules():
    """Restores sys.modules and sys.path after a test that imports function code."""
    modules = dict(sys.modules)
    path = list(sys.path)
    yield
    for name in list(sys.modules):
        if name not in modules:
            del sys.modules[name]
    sys.path[:] = path


@pytest.fixture
def log_lines(tmp_path):
    """Sends every pilotlight log line to a file; returns a reader of the JSON records so far."""
    import json

    from pilotlight import logging as plogging

    target = tmp_path / "log.jsonl"
    plogging.set_destination(path=str(target))

    def read() -> list[dict]:
        if not target.exists():
            return []
        return [json.loads(line) for line in target.read_text().splitlines() if line.strip()]

    yield read
    plogging.set_destination(fd=2)
