"""The shape of the code: docs/architecture.md names every module, and functions stay short.

Both checks read the source tree only (no Redis, no processes), so they fail the moment a module is
added without its sentence, or a function grows past the limit.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.servers import ROOT

PACKAGES = ("otel_redis", "query_api", "collector")
MAX_FUNCTION_LINES = 80

# Functions still over the limit, with their length when they were listed. The list may only shrink:
# a function that got short must leave it, a new long one fails the test (split it, or say in the
# README why it cannot be).
LONG_FUNCTIONS = {
    "otel_redis/instrumentation.py:RequestLoggingMiddleware.__call__": 122,
    "otel_redis/pipeline.py:configure": 123,
    "otel_redis/request_log.py:emit_request": 83,
    "otel_redis/schema.py:encode_fields": 91,
}


def module_files() -> list[Path]:
    return sorted(p.relative_to(ROOT) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def doc_name(path: Path) -> str:
    """How docs/architecture.md names a module: ``x.py`` in otel_redis/, the path from the package
    below it (``cli/x.py``), and the full path in the service packages."""
    parts = path.parts
    return "/".join(parts[1:]) if parts[0] == "otel_redis" else path.as_posix()


def test_every_module_has_its_sentence_in_the_architecture_page():
    page = (ROOT / "docs" / "architecture.md").read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in page.splitlines() if line.startswith("| `")}
    missing = [doc_name(p) for p in module_files() if doc_name(p) not in rows]
    assert not missing, f"add a row to docs/architecture.md for: {missing}"
    stale = sorted(rows - {doc_name(p) for p in module_files()})
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"


def long_functions() -> dict[str, int]:
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str, path: Path) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lines = (child.end_lineno or child.lineno) - child.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        found[f"{path.as_posix()}:{name}"] = lines
                visit(child, f"{name}.", path)

    for path in module_files():
        visit(ast.parse((ROOT / path).read_text()), "", path)
    return found


def test_no_new_function_is_over_80_lines():
    found = long_functions()
    new = {name: n for name, n in found.items() if name not in LONG_FUNCTIONS}
    assert not new, f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps): {new}"
    grown = {name: n for name, n in found.items() if name in LONG_FUNCTIONS and n > LONG_FUNCTIONS[name]}
    assert not grown, f"listed long functions that grew (split them instead): {grown}"


def test_the_allow_list_of_long_functions_only_shrinks():
    gone = sorted(set(LONG_FUNCTIONS) - set(long_functions()))
    assert not gone, f"now short or removed: take them off LONG_FUNCTIONS in {Path(__file__).name}: {gone}"
