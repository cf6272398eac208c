"""The layering rules of the package docstrings, checked on every import statement of the source (an AST
walk, so imports inside functions count too):

* services import no Flask (or Flask extension), and nothing of the app above them;
* models import nothing above the models;
* the protocol wiring (``idp.oauth``) imports no views and no CLI;
* the foundation modules (config, errors, events, crypto) import no Flask;
* the demo relying parties (``clients/``) import nothing of ``idp``.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLASK = (
    "flask",
    "flask_babel",
    "flask_wtf",
    "flask_limiter",
    "flask_migrate",
    "flask_sqlalchemy",
    "werkzeug",
)
ABOVE_SERVICES = ("idp.views", "idp.oauth", "idp.cli", "idp.runtime", "idp.extensions", "idp.messages")
MODELS_MAY_IMPORT = ("idp.models", "idp.extensions", "idp.crypto")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imports_of(path.read_text(encoding="utf-8"), package)


def imports_of(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, relative imports resolved; ``from x
    import y`` also counts as x.y, in case y is a module (``from .. import views`` is ``idp.views``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _sources(*folders: str) -> list[Path]:
    files = []
    for folder in folders:
        for directory, _, names in os.walk(ROOT / folder):
            if "migrations" in Path(directory).parts:
                continue
            files.extend(Path(directory) / name for name in names if name.endswith(".py"))
    return sorted(files)


def _forbidden(found: set[str], forbidden) -> list[str]:
    return sorted(m for m in found if any(m == f or m.startswith(f + ".") for f in forbidden))


def _offending(path: Path, forbidden) -> list[str]:
    return _forbidden(imports(path), forbidden)


def _ids(files):
    return [str(p.relative_to(ROOT)) for p in files]


SERVICES = _sources("idp/services")
MODELS = _sources("idp/models")
OAUTH = _sources("idp/oauth")
CLIENTS = _sources("clients")
FOUNDATION = [ROOT / "idp" / name for name in ("config.py", "errors.py", "events.py", "crypto.py")]


@pytest.mark.parametrize("path", SERVICES, ids=_ids(SERVICES))
def test_services_import_no_flask_and_nothing_above_them(path):
    assert _offending(path, FLASK + ABOVE_SERVICES) == []


@pytest.mark.parametrize("path", MODELS, ids=_ids(MODELS))
def test_models_import_nothing_above_the_models(path):
    own = {m for m in imports(path) if m == "idp" or m.startswith("idp.")}
    assert sorted(m for m in own if not m.startswith(MODELS_MAY_IMPORT)) == []


@pytest.mark.parametrize("path", OAUTH, ids=_ids(OAUTH))
def test_oauth_imports_no_views_and_no_cli(path):
    assert _offending(path, ("idp.views", "idp.cli")) == []


@pytest.mark.parametrize("path", FOUNDATION, ids=_ids(FOUNDATION))
def test_the_foundation_imports_no_flask(path):
    assert _offending(path, FLASK + ("idp.models", "idp.views", "idp.oauth", "idp.runtime")) == []


@pytest.mark.parametrize("path", CLIENTS, ids=_ids(CLIENTS))
def test_clients_import_nothing_of_idp(path):
    assert _offending(path, ("idp",)) == []


def test_the_walk_sees_relative_and_function_level_imports():
    # The checker itself: a relative import inside a function of a service is found and resolved.
    found = imports_of("def f():\n    from ..views import web\n    import flask\n", "idp.services")
    assert _forbidden(found, FLASK + ABOVE_SERVICES) == ["flask", "idp.views", "idp.views.web"]
