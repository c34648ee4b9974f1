"""Finding and loading a function's module, and every way a load fails, with its code."""

from __future__ import annotations

import asyncio
import os
import textwrap

import pytest

from pilotlight.loader import LoadError, LoadRequest, load_function, resolve_entry

pytestmark = pytest.mark.usefixtures("isolated_modules")


def write(root, files: dict[str, str]) -> str:
    for name, source in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(textwrap.dedent(source))
    return str(root)


def load(root: str, entrypoint: str | None = None, **kwargs):
    return asyncio.run(load_function(LoadRequest(root=root, entrypoint=entrypoint, **kwargs)))


def load_error(root: str, entrypoint: str | None = None, **kwargs) -> LoadError:
    with pytest.raises(LoadError) as failed:
        load(root, entrypoint, **kwargs)
    return failed.value


class TestResolveEntry:
    def test_a_missing_directory(self, tmp_path):
        with pytest.raises(LoadError) as failed:
            resolve_entry(str(tmp_path / "nope"), None)
        assert failed.value.code == "PILOTLIGHT_CODE_MISSING"

    def test_defaults_in_order(self, tmp_path):
        root = write(tmp_path, {"handler.py": "", "__init__.py": ""})
        assert resolve_entry(root, None).module == "handler"
        write(tmp_path, {"main.py": ""})
        assert resolve_entry(root, None).module == "main"

    def test_a_root_package(self, tmp_path):
        root = write(tmp_path / "my-fn", {"__init__.py": ""})
        entry = resolve_entry(root, None)
        assert entry.root_package is True
        assert entry.module == "my_fn"

    def test_no_module(self, tmp_path):
        with pytest.raises(LoadError) as failed:
            resolve_entry(str(tmp_path), None)
        assert failed.value.code == "PILOTLIGHT_NO_ENTRYPOINT"
        assert "main.py" in failed.value.message

    @pytest.mark.parametrize(
        ("entrypoint", "module", "attr"),
        [
            ("app", "app", None),
            ("app.py", "app", None),
            ("./app.py", "app", None),
            ("app:handle", "app", "handle"),
            ("app.handle", "app", "handle"),
            ("pkg/api.py", "pkg.api", None),
            ("pkg.api", "pkg.api", None),
            ("pkg.api.serve", "pkg.api", "serve"),
            ("pkg.api:serve", "pkg.api", "serve"),
            ("pkg", "pkg", None),
        ],
    )
    def test_entrypoint_forms(self, tmp_path, entrypoint, module, attr):
        root = write(tmp_path, {"app.py": "", "pkg/__init__.py": "", "pkg/api.py": ""})
        entry = resolve_entry(root, entrypoint)
        assert (entry.module, entry.attr) == (module, attr)

    @pytest.mark.parametrize("entrypoint", ["missing", "missing.py", "app:", "../outside.py", "link.py", "app:not-a-name"])
    def test_bad_entrypoints(self, tmp_path, entrypoint):
        root = write(tmp_path / "fn", {"app.py": ""})
        write(tmp_path, {"outside.py": ""})
        os.symlink(tmp_path / "outside.py", tmp_path / "fn" / "link.py")
        if entrypoint == "app:":
            assert resolve_entry(root, entrypoint).attr is None
            return
        with pytest.raises(LoadError) as failed:
            resolve_entry(root, entrypoint)
        assert failed.value.code == "PILOTLIGHT_NO_ENTRYPOINT"


class TestLoad:
    def test_routes_schedules_hooks_and_env(self, tmp_path, monkeypatch):
        monkeypatch.setenv("GREETING", "restored after the test")
        root = write(
            tmp_path,
            {
                "main.py": """
                    import os
                    from pilotlight import get, initializer, schedule
                    from helpers import greeting

                    SEEN_AT_IMPORT = os.environ["GREETING"]

                    @get("/")
                    def index():
                        return greeting()

                    @schedule("0 * * * *", name="hourly")
                    def hourly():
                        return "ran"

                    @initializer
                    def ready():
                        global READY
                        READY = True
                    """,
                "helpers.py": "import os\ndef greeting():\n    return os.environ['GREETING']\n",
                "pyproject.toml": '[project]\nname = "fn"\nversion = "2.3.4"\n',
            },
        )
        served = load(root, function="fn", instance="pod-1", env={"GREETING": "hi"})
        assert served.kind == "routes"
        assert served.routes == ["GET /"]
        assert served.schedules == [{"name": "hourly", "cron": "0 * * * *", "timezone": "UTC"}]
        assert served.info.name == "fn"
        assert served.info.instance == "pod-1"
        assert served.info.version == "2.3.4"
        import main  # type: ignore[import-not-found]

        assert main.SEEN_AT_IMPORT == "hi"
        assert main.READY is True

    def test_a_plain_handler_named_by_the_entrypoint(self, tmp_path):
        root = write(tmp_path, {"fn.py": "def serve(request):\n    return 'x'\n__version__ = '0.9'\n"})
        served = load(root, "fn:serve")
        assert (served.kind, served.routes, served.info.version) == ("handler", ["* /"], "0.9")

    def test_a_root_package_with_relative_imports(self, tmp_path):
        root = write(tmp_path / "pkgfn", {"__init__.py": "from .impl import handler\n", "impl.py": "def handler():\n    return 'pkg'\n"})
        assert load(root).kind == "handler"

    def test_an_import_that_raises(self, tmp_path):
        root = write(tmp_path, {"main.py": "def explode():\n    raise RuntimeError('fixture exploded at import')\nexplode()\n"})
        error = load_error(root)
        assert error.code == "PILOTLIGHT_LOAD_FAILED"
        assert "RuntimeError: fixture exploded at import" in error.message
        assert "main.py" in error.message
        assert "explode()" in error.stack
        assert "main.py" in error.stack

    def test_a_syntax_error(self, tmp_path):
        error = load_error(write(tmp_path, {"main.py": "def broken(:\n"}))
        assert error.code == "PILOTLIGHT_LOAD_FAILED"
        assert "SyntaxError" in error.message

    def test_sys_exit_at_import_is_a_failed_load_not_an_exit(self, tmp_path):
        error = load_error(write(tmp_path, {"main.py": "import sys\nsys.exit(3)\n"}))
        assert error.code == "PILOTLIGHT_LOAD_FAILED"
        assert "SystemExit" in error.message

    def test_a_bad_schedule_fails_the_import_with_the_reason(self, tmp_path):
        root = write(tmp_path, {"main.py": "from pilotlight import schedule\n@schedule('* * *')\ndef job():\n    pass\n"})
        error = load_error(root)
        assert error.code == "PILOTLIGHT_LOAD_FAILED"
        assert "expected 5 fields" in error.message

    def test_nothing_to_serve(self, tmp_path):
        error = load_error(write(tmp_path, {"main.py": "not_a_handler = 42\n"}))
        assert error.code == "PILOTLIGHT_NO_HANDLER"
        assert "handler(request, context)" in error.message

    @pytest.mark.parametrize(("entrypoint", "fragment"), [("main:missing", "no attribute 'missing'"), ("main:value", "not a function")])
    def test_a_named_handler_that_is_not_there(self, tmp_path, entrypoint, fragment):
        error = load_error(write(tmp_path, {"main.py": "value = 1\n"}), entrypoint)
        assert error.code == "PILOTLIGHT_NO_HANDLER"
        assert fragment in error.message

    def test_an_initializer_that_raises(self, tmp_path):
        root = write(
            tmp_path,
            {"main.py": "def initialize():\n    raise ConnectionError('the database is unreachable')\ndef handler():\n    return 1\n"},
        )
        error = load_error(root)
        assert error.code == "PILOTLIGHT_INITIALIZER_FAILED"
        assert "the database is unreachable" in error.message
        assert "ConnectionError" in error.stack

    def test_a_module_name_taken_by_the_standard_library(self, tmp_path):
        error = load_error(write(tmp_path, {"json.py": "def handler():\n    return 1\n"}), "json")
        assert error.code == "PILOTLIGHT_NO_ENTRYPOINT"
        assert "rename the file" in error.message
