"""The layout docs/architecture.md draws: imports run one way (no circles, none upward, no view
reaching into a sibling), modules stay small, and the web process renders without torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("compute", "dashboard")
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Every module of compute/ and dashboard/ (and app.py), by dotted name."""
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")] + [ROOT / "app.py"]
    return {_module_name(p): p for p in paths}


def _owner(name: str, modules) -> str | None:
    """The project module an imported name belongs to (``compute.engine.jobs.ACTIVE`` ->
    ``compute.engine.jobs``), or None for a module outside the project."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its body, functions included
    (an import deferred into a function is still a dependency). A package's bare
    ``__init__`` counts only when nothing more specific is named."""
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                owner = _owner(target, modules)
                if owner and owner != name:
                    found.add(owner)
        graph[name] = found
    return graph


def _cycle(graph) -> list[str] | None:
    """One import circle in ``graph`` as a list of modules, or None."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if not colour.get(nxt):
                found = visit(nxt)
                if found:
                    return found
        colour[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if not colour.get(node):
            found = visit(node)
            if found:
                return found
    return None


# Floors, lowest first: a module may import its own floor's modules and those below, never above.
FLOORS = (
    ("compute.settings", "compute.errors", "compute.processes"),
    ("compute.measures",),
    ("compute.sources",),
    ("compute.engine",),
    ("compute.__main__", "compute.zoo", "compute"),
    ("dashboard.figures",),
    ("dashboard",),  # the parts views share: selection, jobs panel, sharing, services...
    ("dashboard.views",),
    ("dashboard.app",),
    ("app",),
)


def floor(module: str) -> int:
    """The floor of ``module``: its longest matching prefix in FLOORS."""
    best, level = -1, None
    for index, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), index
    assert level is not None, f"{module} is on no floor of FLOORS; add it"
    return level


def test_the_project_has_no_import_circle():
    circle = _cycle(import_graph())
    assert circle is None, f"import circle: {' -> '.join(circle)}"


def test_the_circle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_imports_never_go_up_a_floor():
    upward = [f"{module} (floor {floor(module)}) imports {target} (floor {floor(target)})"
              for module, targets in import_graph().items() for target in targets
              if floor(target) > floor(module)]
    assert upward == []


def test_no_view_imports_another_view():
    graph = import_graph()
    crossing = [f"{module} imports {target}" for module, targets in graph.items()
                if module.startswith("dashboard.views.") for target in targets
                if target.startswith("dashboard.views.")]
    assert crossing == []


def test_no_module_is_longer_than_the_limit():
    long = {name: n for name, path in project_modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules (over {MAX_LINES} lines): {long}"


@pytest.mark.parametrize("heavy", ["torch", "torchvision", "scipy", "sklearn"])
def test_the_web_process_renders_without_the_numerics(heavy):
    """Importing the Dash app (every view, every callback) loads no numerics library: the web
    process starts fast and never risks initialising CUDA."""
    code = f"import sys, dashboard.app; print({heavy!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", f"importing dashboard.app imports {heavy}"
