"""A JSON CRUD function: todos kept in memory, bodies validated (400 naming the bad fields),
every change logged with the invocation's own logger, so each line carries its request and trace
ids even when requests run at once."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from pilotlight import BadRequestError, NotFoundError, delete, get, initializer, logger, post, put

_todos: dict[int, dict[str, Any]] = {}
_ids = itertools.count(1)
# def handlers run in a thread pool: shared state needs a lock.
_lock = threading.Lock()


@initializer
def seed() -> None:
    """Runs once after load, before the instance reports ready."""
    logger.info("todo store ready", todos=len(_todos))


def _validated(body: Any) -> dict[str, Any]:
    errors = []
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object")
    title, priority = body.get("title"), body.get("priority", 3)
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
        errors.append({"property": "title", "message": "title must be 1 to 200 characters"})
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 5:
        errors.append({"property": "priority", "message": "priority must be an integer from 1 to 5"})
    if errors:
        raise BadRequestError("the todo is invalid", errors=errors)
    return {"title": title.strip(), "priority": priority, "done": bool(body.get("done", False))}


def _find(todo_id: str) -> dict[str, Any]:
    todo = _todos.get(int(todo_id)) if todo_id.isdigit() else None
    if todo is None:
        raise NotFoundError(f"no todo {todo_id}")
    return todo


@post("/todos")
def create(request, context):
    fields = _validated(request.json())
    with _lock:
        todo = {"id": next(_ids), **fields}
        _todos[todo["id"]] = todo
    context.logger.info("todo created", todo_id=todo["id"])
    return todo, 201, {"location": f"/todos/{todo['id']}"}


@get("/todos")
def list_todos(request):
    done = request.query.get("done")
    todos = list(_todos.values())
    if done is not None:
        todos = [t for t in todos if t["done"] == (done == "true")]
    return todos


@get("/todos/{todo_id}")
def read(todo_id):
    return _find(todo_id)


@put("/todos/{todo_id}")
def replace(request, context, todo_id):
    fields = _validated(request.json())
    with _lock:
        todo = _find(todo_id)
        todo.update(fields)
    context.logger.info("todo updated", todo_id=todo["id"])
    return todo


@delete("/todos/{todo_id}")
def remove(context, todo_id):
    with _lock:
        todo = _find(todo_id)
        del _todos[todo["id"]]
    context.logger.info("todo deleted", todo_id=todo["id"])
    return None
