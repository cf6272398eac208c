"""No request handler sleeps (issue 10): a sleep holds a worker, so a few anonymous connections could
stall the provider. The flow tests patch ``time.sleep`` to fail during the sign-in, reset and recovery
POSTs; this one keeps the request layers free of any sleep call at all."""

from __future__ import annotations

import ast
from pathlib import Path

import idp

ROOT = Path(idp.__file__).parent
# What runs inside a request: the blueprints, the authlib wiring, the helpers they call.
REQUEST_LAYERS = ["views", "oauth", "services", "headers.py", "csrf.py", "observability.py", "errors.py"]


def _sleep_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "sleep":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_request_layer_calls_sleep():
    files = []
    for layer in REQUEST_LAYERS:
        target = ROOT / layer
        files.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    assert files
    calls = [call for path in files for call in _sleep_calls(path)]
    assert calls == [], f"sleep called in request code: {calls}"
