"""Loading a function late: finding its module under ``root``, importing it with its env set, and
turning what it registered into a :class:`~pilotlight.serve.ServedFunction`. Every failure is a
:class:`LoadError` with a stable code (docs/runtime-protocol.md)."""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from . import decorators
from .context import FunctionInfo
from .logging import refresh_level
from .serve import FunctionShapeError, ServedFunction, executor, serve_module

__all__ = ["LoadError", "LoadRequest", "Entry", "resolve_entry", "load_function", "DEFAULT_ENTRIES"]

#: Tried in order when no entrypoint is given.
DEFAULT_ENTRIES = ("main.py", "handler.py", "__init__.py")


class LoadError(Exception):
    """A load that cannot succeed, for a reason the function's author can fix."""

    def __init__(self, code: str, message: str, stack: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.stack = stack


@dataclass(frozen=True)
class LoadRequest:
    """The ``load`` message of the runtime protocol."""

    root: str
    entrypoint: str | None = None
    function: str | None = None
    instance: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> LoadRequest:
        """The request a ``load`` message makes, its fields checked as the watchdog checks a
        ``/_/specialize`` body: ``root`` a non-empty string; ``entrypoint``, ``function`` and
        ``instance`` strings when given; ``env`` an object of strings, each name non-empty without
        ``=`` or NUL, each value without NUL. A null value is refused, not taken as "unset": the
        watchdog never sends one, and guessing (skip it? remove an inherited variable?) would hide
        the sender's bug.

        :raises LoadError: ``PILOTLIGHT_BAD_LOAD``, naming every field that is wrong.
        """
        problems: list[str] = []
        root = message.get("root")
        if not isinstance(root, str) or not root:
            problems.append(f'"root" must be the code\'s directory, a non-empty string; got {_json_kind(root)}')
        for key in ("entrypoint", "function", "instance"):
            value = message.get(key)
            if value is not None and not isinstance(value, str):
                problems.append(f'"{key}" must be a string; got {_json_kind(value)}')
        env = message.get("env")
        if env is None:
            env = {}
        elif not isinstance(env, dict):
            problems.append(f'"env" must be an object of strings; got {_json_kind(env)}')
            env = {}
        for name, value in env.items():
            if not name or "=" in name or "\0" in name:
                problems.append(f'env name {name!r} must be non-empty, without "=" or NUL')
            if not isinstance(value, str):
                problems.append(f"env {name!r} must be a string; got {_json_kind(value)}" + (" (leave the variable out instead)" if value is None else ""))
            elif "\0" in value:
                problems.append(f"env {name!r} must not contain NUL")
        if problems:
            raise LoadError("PILOTLIGHT_BAD_LOAD", "the load message is malformed: " + "; ".join(problems))
        return cls(
            root=root,
            entrypoint=message.get("entrypoint") or None,
            function=message.get("function") or None,
            instance=message.get("instance") or None,
            env=dict(env),
        )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass(frozen=True)
class Entry:
    """The file to import, the module name to import it as, and optionally the function in it."""

    root: str
    file: str
    module: str
    attr: str | None
    #: True when the root folder itself is the package (``__init__.py`` at the root).
    root_package: bool = False


def _inside(root: str, path: str) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real != real_root and os.path.commonpath([real_root, real]) == real_root


def _find(root: str, spec: str) -> str | None:
    """The file for a module spec: ``main``, ``main.py``, ``pkg/app.py``, ``pkg.app``, ``pkg``."""
    spec = spec.strip().removeprefix("./")
    if not spec:
        return None
    candidates: list[str] = []
    if spec.endswith(".py"):
        candidates.append(spec)
    else:
        for base in dict.fromkeys([spec, spec.replace(".", "/")]):
            candidates += [f"{base}.py", f"{base}/__init__.py"]
    for candidate in candidates:
        path = os.path.join(root, candidate)
        if os.path.isfile(path):
            return path
    return None


def _module_name(root: str, file: str) -> str:
    rel = os.path.relpath(file, root)[: -len(".py")]
    parts = rel.split(os.sep)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_name(root: str) -> str:
    base = os.path.basename(os.path.normpath(root)).replace("-", "_")
    return base if base.isidentifier() and base not in sys.modules else "pilotlight_function"


def resolve_entry(root_dir: str, entrypoint: str | None) -> Entry:
    """Finds the module to load in ``root_dir``. ``entrypoint`` is a module (``main``,
    ``app/main.py``, ``app.main``), or a module and function (``main:handle``, ``main.handle``);
    without one, ``main.py``, ``handler.py``, then ``__init__.py``.

    :raises LoadError: ``PILOTLIGHT_CODE_MISSING`` when ``root_dir`` is not a directory,
        ``PILOTLIGHT_NO_ENTRYPOINT`` when there is no such module.
    """
    root = os.path.abspath(root_dir) if root_dir else ""
    if not root or not os.path.isdir(root):
        raise LoadError("PILOTLIGHT_CODE_MISSING", f"the function's directory {root or root_dir!r} does not exist")
    attr: str | None = None
    file: str | None = None
    if entrypoint is None:
        file = next((os.path.join(root, name) for name in DEFAULT_ENTRIES if os.path.isfile(os.path.join(root, name))), None)
        if file is None:
            raise LoadError(
                "PILOTLIGHT_NO_ENTRYPOINT",
                f"no {', '.join(DEFAULT_ENTRIES[:-1])} or {DEFAULT_ENTRIES[-1]} in {root}: "
                'give "entrypoint" (a module such as app.py, or module:function)',
            )
    else:
        spec = entrypoint
        if ":" in entrypoint:
            spec, attr = entrypoint.split(":", 1)
            attr = attr or None
        file = _find(root, spec)
        if file is None and attr is None and "." in spec and not spec.endswith(".py"):
            module_part, _, attr = spec.rpartition(".")
            file = _find(root, module_part)
        if file is None:
            raise LoadError("PILOTLIGHT_NO_ENTRYPOINT", f"no module {spec!r} in {root}: give a module such as main.py, or module:function")
    if not _inside(root, file):
        raise LoadError("PILOTLIGHT_NO_ENTRYPOINT", f"entrypoint {entrypoint!r} is outside {root}")
    if attr is not None and not attr.isidentifier():
        raise LoadError("PILOTLIGHT_NO_ENTRYPOINT", f"{attr!r} in entrypoint {entrypoint!r} is not a Python name")
    if os.path.abspath(file) == os.path.join(root, "__init__.py"):
        return Entry(root, file, _package_name(root), attr, root_package=True)
    return Entry(root, file, _module_name(root, file), attr)


def _same_file(module: ModuleType, file: str) -> bool:
    found = getattr(module, "__file__", None)
    return found is not None and os.path.realpath(found) == os.path.realpath(file)


def _import(entry: Entry) -> ModuleType:
    # The function's folder first on the path, as a script's own folder is: its modules win.
    if entry.root in sys.path:
        sys.path.remove(entry.root)
    sys.path.insert(0, entry.root)
    importlib.invalidate_caches()
    existing = sys.modules.get(entry.module)
    if existing is not None:
        if not _same_file(existing, entry.file):
            raise LoadError(
                "PILOTLIGHT_NO_ENTRYPOINT",
                f"the module name {entry.module!r} of {entry.file} is taken by "
                f"{getattr(existing, '__file__', None) or 'a built-in module'}; rename the file",
            )
        return existing
    if entry.root_package:
        spec = importlib.util.spec_from_file_location(entry.module, entry.file, submodule_search_locations=[entry.root])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[entry.module] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(entry.module, None)
            raise
        return module
    module = importlib.import_module(entry.module)
    if not _same_file(module, entry.file):
        raise LoadError(
            "PILOTLIGHT_NO_ENTRYPOINT",
            f"importing {entry.module!r} found {getattr(module, '__file__', None)} instead of {entry.file}; rename the file",
        )
    return module


def _version(root: str, module: ModuleType) -> str | None:
    from_env = os.environ.get("PILOTLIGHT_FUNCTION_VERSION") or os.environ.get("K_REVISION")
    if from_env:
        return from_env
    pyproject = os.path.join(root, "pyproject.toml")
    if os.path.isfile(pyproject):
        try:
            import tomllib

            with open(pyproject, "rb") as handle:
                version = tomllib.load(handle).get("project", {}).get("version")
            if isinstance(version, str):
                return version
        except (OSError, ValueError):
            pass
    version = getattr(module, "__version__", None)
    return version if isinstance(version, str) else None


def _stack(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


async def load_function(request: LoadRequest) -> ServedFunction:
    """Loads a function: sets its env, imports its module (in a worker thread, so the loop keeps
    answering pings however long the import takes), finds what it serves, runs its initializers.

    :raises LoadError: with the reason's code, message and traceback.
    """
    entry = resolve_entry(request.root, request.entrypoint)
    os.environ.update(request.env)
    refresh_level()
    position = decorators.mark()
    loop = asyncio.get_running_loop()
    try:
        module = await loop.run_in_executor(executor(), contextvars.copy_context().run, _import, entry)
    except LoadError:
        raise
    except (Exception, SystemExit, KeyboardInterrupt) as error:
        raise LoadError(
            "PILOTLIGHT_LOAD_FAILED",
            f"importing {entry.file} raised {type(error).__name__}: {error}",
            _stack(error),
        ) from error
    info = FunctionInfo(name=request.function, version=_version(entry.root, module), instance=request.instance)
    try:
        served = serve_module(module, entry.attr, info, entry.file, decorators.since(position))
        await served.initialize()
    except FunctionShapeError as error:
        cause = error.__cause__
        raise LoadError(error.code, error.message, _stack(cause) if cause is not None else _stack(error)) from error
    return served
