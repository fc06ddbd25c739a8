"""The shape of the code: docs/architecture.md names every module, and functions stay short.

Both checks read the source tree only (no Redis, no processes), so they fail the moment a module is
added without its sentence, or a function grows past the limit.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from tests.servers import ROOT

PACKAGES = ("otel_redis", "query_api", "collector")
MAX_FUNCTION_LINES = 80

# Functions still over the limit, with their length when they were listed. The list may only shrink:
# a function that got short must leave it, a new long one fails the test (split it, or say in the
# README why it cannot be).
LONG_FUNCTIONS: dict[str, int] = {}


@functools.cache
def parsed(path: Path) -> ast.Module:
    """The syntax tree of one module, parsed once for all the checks of this file."""
    return ast.parse((ROOT / path).read_text())


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
        visit(parsed(path), "", path)
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


# Function-local imports of this project's own modules that stay, each with its reason, as
# "importer -> imported". Anything else belongs at the top of the module. The CLI's sub-commands
# (otel_redis/cli/) import what they run lazily, for start-up time, and are not listed.
ALLOWED_LOCAL_IMPORTS = {
    # opt-in or optional parts, imported only when switched on
    "otel_redis.pipeline -> otel_redis.stdlib": "only with capture_stdlib",
    "otel_redis.transport -> otel_redis.transport_cluster": "only on a Redis Cluster",
    "otel_redis.docgen -> otel_redis.alert_rules": "imports redis; only the generator needs it",
    "query_api.background -> query_api.prometheus": "only to validate the /metrics settings",
    "query_api.prometheus -> collector.config": "the service runs without the collector",
    "query_api.prometheus -> collector.counters": "the service runs without the collector",
    "query_api.routers.health -> collector.config": "the service runs without the collector",
    "query_api.routers.health -> collector.counters": "the service runs without the collector",
}
LAZY_PACKAGES = ("otel_redis.cli",)


def module_names() -> dict[str, Path]:
    """Dotted module name -> source path, for every module of the three packages."""
    out = {}
    for path in module_files():
        parts = list(path.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported(module: str, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> set[str]:
    """The project modules one import statement loads. ``from pkg import sub`` names the submodule
    (not the package: a package's ``__init__`` is loaded before any of its modules anyway)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    base = module.split(".")
    if node.level:
        if modules[module].name != "__init__.py":
            base.pop()
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    found = {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names}
    return found & set(modules)


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Module-level imports (TYPE_CHECKING blocks included) and function-local ones, per module."""
    modules = module_names()
    top: dict[str, set[str]] = {m: set() for m in modules}
    local: dict[str, set[str]] = {m: set() for m in modules}

    def visit(node: ast.AST, module: str, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (local if in_function else top)[module] |= imported(module, child, modules)
            visit(child, module, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    for module, path in modules.items():
        visit(parsed(path), module, False)
    return top, local


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every back edge of a depth-first walk, as the cycle it closes."""
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def walk(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                found.append(stack[stack.index(other):] + [other])
            elif other not in state:
                walk(other)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)
    return found


def test_module_level_imports_have_no_cycle():
    top, _ = import_graph()
    found = [" -> ".join(c) for c in cycles(top)]
    assert not found, f"module-level import cycles (the dependency graph must be a tree): {found}"


def test_function_local_imports_are_only_the_listed_ones():
    _, local = import_graph()
    edges = {f"{m} -> {t}" for m, targets in local.items() for t in targets if not m.startswith(LAZY_PACKAGES)}
    unlisted = sorted(edges - set(ALLOWED_LOCAL_IMPORTS))
    assert not unlisted, f"move these imports to the top of the module (or list them, with why): {unlisted}"
    stale = sorted(set(ALLOWED_LOCAL_IMPORTS) - edges)
    assert not stale, f"no longer function-local: take them off ALLOWED_LOCAL_IMPORTS: {stale}"


# Underscore modules that are the published way to reach an API (the OTel logs API lives there).
PUBLIC_UNDERSCORE_MODULES = {"opentelemetry._logs"}


def test_no_private_name_is_imported_from_another_library():
    """A private name of a dependency can change in any release; we keep wide version ranges."""
    modules = module_names()
    found = []
    for module, path in modules.items():
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                if node.module.split(".")[0] in {m.split(".")[0] for m in modules}:
                    continue
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    if alias.name.startswith("_") and name not in PUBLIC_UNDERSCORE_MODULES:
                        found.append(f"{path}:{node.lineno} {name}")
    assert not found, f"private names of other libraries (use their public API): {found}"
