"""Every Python snippet in the README runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_snippets() -> None:
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_snippet_runs(snippet: str, tmp_path: Path) -> None:
    # A fresh interpreter per snippet, outside the checkout: as a reader would paste it.
    result = subprocess.run(
        [sys.executable, "-I", "-c", snippet], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_session_snippet_prints_what_it_says() -> None:
    [snippet] = [s for s in SNIPPETS if "session.invalidate()  # at logout" in s]
    result = subprocess.run([sys.executable, "-I", "-c", snippet], capture_output=True, text=True)
    assert result.stdout == "True True True\n{}\n"
