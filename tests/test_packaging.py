"""One distribution with one top-level name, and the dependency rule between its packages."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package folder -> the clibd subpackages its modules may not import (nothing imports upward)
FORBIDDEN = {"clibd": ("clibd.training", "clibd.index", "clibd.service"),
             "training": ("clibd.index", "clibd.service"),
             "index": ("clibd.training", "clibd.service")}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_installed_packages_live_under_the_clibd_name(tmp_path):
    """From a folder other than the checkout, `import index` fails and `import clibd.index` works."""
    code = ("import importlib.util, clibd.index, clibd.service, clibd.training\n"
            "print([importlib.util.find_spec(n) is None for n in ('index', 'service', 'training')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    if "No module named 'clibd" in out.stderr:
        pytest.skip("the project is not installed (make install)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[True, True, True]"


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_nothing_imports_upward(folder):
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if folder == "clibd" and path.parent.name != "clibd" and path.parent.parent.name != "clibd":
            continue
        for name in _imports(path):
            bare = name.split(".")[0] in ("index", "service", "training")
            if bare or any(name == f or name.startswith(f + ".") for f in FORBIDDEN[folder]):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, offenders
