"""Starlette's own session tests, run against the drop-in.

The test module comes from the Starlette sdist on PyPI, for the version installed here,
fetched at test time (cached in pytest's cache folder) and never copied into this
repository. One line changes, the import of the middleware and its ``Session``; the
tests run unmodified in a pytest of their own, beside Starlette's own ``conftest.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STARLETTE = version("starlette")
# The one line that changes: whatever the module imports from Starlette's middleware (its
# SessionMiddleware, and in newer versions its Session), it imports from the drop-in.
THEIR_IMPORT = "from starlette.middleware.sessions import "
OUR_IMPORT = "from sesh.adapters.starlette import "
# What the suite needs beside the test module: its fixtures and their types.
NEEDED = (
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/types.py",
    "tests/middleware/__init__.py",
)
MODULE = "tests/middleware/test_session.py"


def sdist(cache: Path) -> Path:
    """The Starlette sdist of the installed version, downloaded once into ``cache``."""
    found = sorted(cache.glob(f"starlette-{STARLETTE}.tar.gz"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "--dest", str(cache), f"starlette=={STARLETTE}"],
            check=True,
            timeout=300,
        )  # fmt: skip
        found = sorted(cache.glob(f"starlette-{STARLETTE}.tar.gz"))
    assert found, f"pip download gave no sdist of starlette {STARLETTE}"
    return found[0]


@pytest.fixture(scope="module")
def their_suite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = request.config.cache
    assert cache is not None
    archive = sdist(cache.mkdir("starlette-sdist"))
    root = tmp_path_factory.mktemp("starlette-suite")
    prefix = f"starlette-{STARLETTE}/"
    with tarfile.open(archive) as tar:
        present = set(tar.getnames())
        for name in (*NEEDED, MODULE):
            if prefix + name not in present and name != MODULE:
                continue  # an older Starlette keeps its fixtures elsewhere
            member = tar.getmember(prefix + name)
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            extracted = tar.extractfile(member)
            assert extracted is not None
            target.write_bytes(extracted.read())
    module = root / MODULE
    text = module.read_text()
    assert text.count(THEIR_IMPORT) == 1, "Starlette's test module imports differently now"
    module.write_text(text.replace(THEIR_IMPORT, OUR_IMPORT))
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return root


def test_starlettes_own_session_suite_passes_against_the_drop_in(their_suite: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", MODULE],
        cwd=their_suite,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in summary, summary
    assert "skipped" not in summary, summary
