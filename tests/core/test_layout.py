"""The layout docs/architecture.md describes: the state's fields are touched only where it
is defined, and neither the state nor the session imports the engine at run time."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import sesh.core

PACKAGE = Path(sesh.core.__file__).resolve().parents[1]  # core/, stores/, adapters/
SOURCES = sorted(PACKAGE.glob("*/*.py"))


def test_the_sources_are_found() -> None:
    assert {path.name for path in SOURCES} >= {"state.py", "session.py", "engine.py"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_module_but_the_states_own_touches_its_fields(path: Path) -> None:
    text = path.read_text()
    if path.name == "state.py":
        return
    # A SessionState is reached as `state` (or `self._state` in the session): no private
    # attribute of it is read or written anywhere else.
    assert not re.findall(r"\bstate\._[a-z]\w*", text)
    assert not re.findall(r"_state\._[a-z]\w*", text)


@pytest.mark.parametrize("module", ["state.py", "session.py", "commit.py"])
def test_no_import_cycle_with_the_engine(module: str) -> None:
    tree = ast.parse((PACKAGE / "core" / module).read_text())
    runtime_imports = {
        node.module
        for node in tree.body  # module level only: `if TYPE_CHECKING:` blocks are not
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert not runtime_imports & {"engine", "middleware"}
