"""Tested without a server or watchdog: pilotlight.testing runs the function on the runtime's own path."""

import os

from pilotlight.testing import invoke

HERE = os.path.dirname(os.path.abspath(__file__))


def test_says_hello_to_the_name_in_the_header():
    res = invoke(HERE, "POST", "/", headers={"name": "world"})
    assert res.status == 200
    assert res.text == "hello world"
    assert res.headers["content-type"] == "text/plain; charset=utf-8"


def test_only_post_is_served():
    assert invoke(HERE, "GET", "/").status == 405
