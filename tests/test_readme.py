"""The README and the docs/ pages stay true: settings, SQL files, links and the README's size."""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import Field, fields
from inspect import getsource
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from gunicorn.http.errors import InvalidHTTPVersion
from gunicorn.workers.base import Worker
from werkzeug import exceptions

from userservice import door, problems
from userservice.errors import ServiceError
from userservice.settings import Settings, number_text

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "CONFIGURATION.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
# Flask's README is 53 lines, httpx's 147, apig-wsgi's 103: the front door, not the manual.
README_MOST_LINES = 220
# A table row that starts with a setting's name and its default: `| `PORT` | `8000` |`.
SETTING_ROW = re.compile(r"^\| `([A-Z][A-Z_0-9]+)` \| ([^|]+) \|", re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A repository path in code spans: `userservice/db/pool.py`, `sql/ping.sql`, `tests/events/`.
REPO_PATH = re.compile(r"`((?:userservice|tests|scripts|sql|bench|docs)/[\w./-]*)`")
# PERFORMANCE.md records figures measured once with scripts since removed, and says so.
CURRENT_PAGES = [page for page in PAGES if page.name != "PERFORMANCE.md"]


def text(path: Path) -> str:
    """Return a page's text."""
    return path.read_text(encoding="utf-8")


def env_names() -> set[str]:
    """Return the environment variable of every setting."""
    return {f.metadata["env"] for f in fields(Settings)}


def documented_default(f: Field[Any]) -> str:
    """Return a setting's default as the docs write it."""
    if f.default == "":
        return "(empty)"
    if isinstance(f.default, bool):
        return str(f.default).lower()
    if isinstance(f.default, float):
        return f"{f.default:g}"
    return str(f.default)


def anchors(page: Path) -> set[str]:
    """Return the anchors GitHub gives a page's headings."""
    headings = re.findall(r"^#+ (.+)$", text(page), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_setting_is_in_the_configuration_table_with_its_default():
    rows = dict(SETTING_ROW.findall(text(CONFIGURATION)))

    for f in fields(Settings):
        env = f.metadata["env"]
        assert env in rows, env
        assert rows[env].strip().strip("`") == documented_default(f), env


def test_every_number_states_the_range_the_code_enforces():
    rows = dict(re.findall(r"^\| `([A-Z][A-Z_0-9]+)` \|(.*)$", text(CONFIGURATION), re.M))

    for f in fields(Settings):
        if f.metadata["maximum"] is not None:
            low, high = (number_text(f.metadata[bound]) for bound in ("minimum", "maximum"))
            assert rows[f.metadata["env"]].endswith(f"; range {low}-{high} |"), f.metadata["env"]


def test_the_configuration_table_names_no_setting_the_code_lacks():
    documented = [name for name, _ in SETTING_ROW.findall(text(CONFIGURATION))]

    assert sorted(documented) == sorted(env_names())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_default_a_page_quotes_is_the_code_default(page):
    defaults = {f.metadata["env"]: documented_default(f) for f in fields(Settings)}

    for env, default in SETTING_ROW.findall(text(page)):
        if env in defaults:
            assert default.strip().strip("`") == defaults[env], (page.name, env)


def test_env_example_names_only_settings_that_exist():
    names = re.findall(r"^#? ?([A-Z][A-Z_0-9]+)=", text(ROOT / ".env.example"), re.MULTILINE)

    assert names, "no settings found in .env.example"
    assert set(names) - env_names() == set()


def subclasses(cls: type) -> list[type]:
    """Return every subclass of cls, at any depth."""
    return [sub for direct in cls.__subclasses__() for sub in (direct, *subclasses(direct))]


def test_every_error_code_is_in_the_api_page_with_its_status():
    rows = set(re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", text(ROOT / "docs" / "API.md"), re.M))

    for error in subclasses(ServiceError):
        assert (error.code, str(error.status)) in rows, error.code


# werkzeug's errors that routing, request parsing and flask-smorest raise on their own.
FRAMEWORK_ERRORS = (
    exceptions.BadRequest,  # a body read that broke off (ClientDisconnected), a bad request
    exceptions.NotFound,
    exceptions.MethodNotAllowed,
    exceptions.RequestEntityTooLarge,  # MAX_CONTENT_LENGTH
    exceptions.UnprocessableEntity,  # flask-smorest's validation
)


def raised_werkzeug_errors() -> set[type[exceptions.HTTPException]]:
    """Return the werkzeug errors the service's own code raises (`raise NotFound()`)."""
    found = set()
    for path in (ROOT / "userservice").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            alias.asname or alias.name: getattr(exceptions, alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "werkzeug.exceptions"
            for alias in node.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", None)
                if name in names:
                    found.add(names[name])
    return found


def door_statuses() -> set[int]:
    """Return every status gunicorn's own refusal (Worker.handle_error) may give."""
    statuses = {int(s) for s in re.findall(r"status_int = (\d+)", getsource(Worker.handle_error))}
    # 403 comes only from a PROXY protocol line or TLS, which gunicorn.conf.py turns on neither.
    config = text(ROOT / "gunicorn.conf.py")
    assert not re.search(r"^(proxy_protocol|certfile|keyfile) *=", config, re.M)
    return statuses - {403}


def producible_codes() -> set[tuple[str, int]]:
    """Return (code, status) of every problem the service can answer, from the code itself."""
    codes = {(cls.code, cls.status) for cls in (ServiceError, *subclasses(ServiceError))}
    app = Flask(__name__)
    with app.test_request_context("/api/v1/users"):
        for error in {*FRAMEWORK_ERRORS, *raised_werkzeug_errors()}:
            answer = problems.handle_http_exception(error())
            codes.add((answer.get_json()["code"], answer.status_code))
        unexpected = problems.handle_unexpected(RuntimeError("x"))
        codes.add((unexpected.get_json()["code"], unexpected.status_code))
    for status in door_statuses():
        codes.add((door.refusal(Exception(), status).code, status))
    version = door.refusal(InvalidHTTPVersion((1, 2)), 400)
    codes.add((version.code, version.status))
    return codes


def test_the_api_error_table_lists_exactly_the_codes_the_service_can_answer():
    table = re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", text(ROOT / "docs" / "API.md"), re.M)
    rows = {(code, int(status)) for code, status in table}

    assert len(rows) == len(table), "a code is in the table twice"
    assert ("BAD_REQUEST", 400) in producible_codes()
    assert sorted(producible_codes() - rows) == [], "answered, not in docs/API.md"
    assert sorted(rows - producible_codes()) == [], "in docs/API.md, never answered"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_flask_command_a_page_gives_runs_the_projects_flask(page):
    # A bare `flask` is whatever is on PATH (often none, or another project's).
    bare = re.findall(r"(?<![\w./-])flask (?:--app|run|init-db|dev-token)", text(page))

    assert bare == []


def test_every_sql_file_is_in_the_snowflake_page():
    page = text(ROOT / "docs" / "SNOWFLAKE.md")

    for path in (ROOT / "sql").glob("*.sql"):
        assert f"`{path.name}`" in page, path.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_in_a_page_names_a_file_and_heading_that_exist(page):
    for target in LINK.findall(text(page)):
        if re.match(r"[a-z]+:", target):
            continue  # a web address: not this repository's to check
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.is_relative_to(ROOT), (page.name, target)
        assert linked.exists(), (page.name, target)
        if anchor:
            assert anchor in anchors(linked), (page.name, target)


@pytest.mark.parametrize("page", CURRENT_PAGES, ids=lambda p: p.name)
def test_every_repository_path_a_page_names_exists(page):
    missing = [path for path in REPO_PATH.findall(text(page)) if not (ROOT / path).exists()]

    assert missing == []


def test_the_layout_table_names_every_module_of_the_service():
    layout = text(ROOT / "docs" / "DEVELOPMENT.md").partition("## Layout")[2].partition("\n## ")[0]
    rows = {row.split(" | ")[0].strip("| `"): row for row in layout.splitlines() if "|" in row}
    package = ROOT / "userservice"
    unnamed = []
    for module in sorted(package.rglob("*.py")):
        where = module.relative_to(package)
        if len(where.parts) == 1:  # the web layer: its own row, or beside the row's first
            named = f"`userservice/{where}`" in layout or f", `{where}`" in layout
        else:  # a module of a layer: in its package's row
            named = where.name == "__init__.py" or f"`{where.name}`" in rows.get(
                f"userservice/{where.parent}/", ""
            )
        if not named:
            unnamed.append(str(where))

    assert unnamed == []
    assert len(list(package.rglob("*.py"))) > 30


def test_every_name_the_architecture_page_gives_is_in_the_code():
    # `hooks.start_request`, `jwks.KeySet.key`: a module of the service, then its attributes.
    modules = {
        path.stem: ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "userservice").rglob("*.py")
        if path.stem != "__init__"
    } | {"auth": "userservice.auth", "db": "userservice.db"}
    named = re.findall(r"\b([a-z_]+)((?:\.[A-Za-z_]+)+)\b", text(ROOT / "docs" / "ARCHITECTURE.md"))
    missing = []
    checked = 0
    for module, attributes in named:
        if module not in modules or attributes in (".py", ".md", ".sql"):
            continue
        found: Any = importlib.import_module(modules[module])
        for attribute in attributes.split(".")[1:]:
            found = getattr(found, attribute, None)
        checked += 1
        if found is None:
            missing.append(module + attributes)

    assert missing == []
    assert checked > 30


@pytest.mark.parametrize("page", CURRENT_PAGES, ids=lambda p: p.name)
def test_every_test_a_page_names_is_defined_in_its_module(page):
    named = re.findall(r"(tests/[\w/]+\.py)::(\w+)", text(page))
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not re.search(rf"^def {name}\(", text(ROOT / path), re.MULTILINE)
    ]

    assert missing == []


def test_the_readme_fits_a_few_screens_and_names_the_two_commands():
    readme = text(README)

    assert len(readme.splitlines()) <= README_MOST_LINES
    for command in ("make run", "make test", "make lint", "make token"):
        assert command in readme, command


def test_the_readme_links_every_docs_page():
    linked = set(LINK.findall(text(README)))

    for page in PAGES[1:]:
        assert f"docs/{page.name}" in linked, page.name
