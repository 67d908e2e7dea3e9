"""The distribution's shape: one importable package ``sesh``, and a clean wheel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_only_sesh_is_importable_from_outside_the_checkout(tmp_path: Path) -> None:
    code = (
        "import importlib.util, json; "
        "print(json.dumps({n: importlib.util.find_spec(n) is not None "
        "for n in ['core', 'stores', 'adapters', 'sesh.core', 'sesh.stores', 'sesh.adapters']}))"
    )
    found = json.loads(run_python(code, tmp_path))
    assert found == {
        "core": False,
        "stores": False,
        "adapters": False,
        "sesh.core": True,
        "sesh.stores": True,
        "sesh.adapters": True,
    }


def test_sesh_core_loads_no_framework(tmp_path: Path) -> None:
    code = (
        "import sys, json; before = set(sys.modules); "
        "import sesh.core, sesh.stores.memory, sesh.stores.cookie; "
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before} "
        "- set(sys.stdlib_module_names))))"
    )
    third_party = set(json.loads(run_python(code, tmp_path)))
    # typing_extensions comes with msgspec; nothing else may.
    assert third_party <= {"sesh", "msgspec", "typing_extensions"}, third_party
    assert not third_party & {"starlette", "fastapi", "bareasgi", "anyio", "uvicorn"}


def test_the_wheel_holds_only_sesh_and_its_metadata(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("core", "stores", "adapters", "tests", "examples", "benchmarks"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("sesh-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not n.startswith(("sesh/", "sesh-0.1.0.dist-info/"))]
    assert outside == []
    assert "sesh/__init__.py" not in names  # a namespace package
    for package in ("core", "stores", "adapters"):
        assert f"sesh/{package}/__init__.py" in names
        assert f"sesh/{package}/py.typed" in names
    assert "sesh/core/engine.py" in names
    assert "sesh/stores/memory.py" in names
