"""The CRUD function through pilotlight.testing: no server, the runtime's serving path."""

import os

from pilotlight.testing import invoke

HERE = os.path.dirname(os.path.abspath(__file__))


def test_create_read_update_delete():
    created = invoke(HERE, "POST", "/todos", body={"title": "water the plants", "priority": 2})
    assert created.status == 201
    todo = created.json()
    assert todo == {"id": todo["id"], "title": "water the plants", "priority": 2, "done": False}
    assert created.headers["location"] == f"/todos/{todo['id']}"

    assert invoke(HERE, "GET", f"/todos/{todo['id']}").json() == todo
    assert todo in invoke(HERE, "GET", "/todos").json()

    updated = invoke(HERE, "PUT", f"/todos/{todo['id']}", body={"title": "water the plants", "priority": 1, "done": True})
    assert updated.json()["done"] is True
    assert invoke(HERE, "GET", "/todos?done=true").json() == [updated.json()]

    assert invoke(HERE, "DELETE", f"/todos/{todo['id']}").status == 204
    assert invoke(HERE, "GET", f"/todos/{todo['id']}").status == 404


def test_an_invalid_todo_is_a_400_naming_the_fields():
    res = invoke(HERE, "POST", "/todos", body={"title": "", "priority": 9})
    assert res.status == 400
    assert sorted(e["property"] for e in res.json()["errors"]) == ["priority", "title"]


def test_a_body_that_is_not_json_is_a_400():
    assert invoke(HERE, "POST", "/todos", body="{oops").status == 400


def test_a_missing_todo_is_a_404():
    res = invoke(HERE, "GET", "/todos/9999")
    assert res.status == 404
    assert res.json() == {"name": "NotFoundError", "message": "no todo 9999"}
