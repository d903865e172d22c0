"""The dashboard's layers: views are siblings (none imports another; what several use lives in
``dashboard.view_parts``, which imports no view), and the web process renders pages without
torch or scipy."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

DASHBOARD = ROOT / "dashboard"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (``from a import b``
    counts as ``a`` and ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted((DASHBOARD / "views").glob("*.py")) + sorted((DASHBOARD / "view_parts").glob("*.py")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_view_and_no_view_part_imports_a_view(path):
    views = {f"dashboard.views.{p.stem}" for p in (DASHBOARD / "views").glob("*.py") if p.stem != "__init__"}
    assert not imported_modules(path) & views


def test_the_web_process_imports_neither_torch_nor_scipy_to_render_a_page():
    script = ("import sys, dashboard.app\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'scipy', 'sklearn'}))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
