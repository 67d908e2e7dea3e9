"""Print pip constraints that pin each of sesh's own dependencies (the required ones and
every extra but ``dev``) to the lowest version pyproject.toml allows, for
``make test-lowest``: a lower bound that is never installed is a guess."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: tomli, which pytest and mypy need there anyway
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

_LOWER_BOUND = re.compile(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([^,;\s]+)$")


def lowest_pins(pyproject: dict[str, object]) -> list[str]:
    project: dict[str, object] = pyproject["project"]  # type: ignore[assignment]
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    wanted: list[str] = list(project["dependencies"])  # type: ignore[call-overload]
    for name, requirements in extras.items():
        if name != "dev":
            wanted += [r for r in requirements if not r.startswith("sesh[")]
    pins = []
    for requirement in wanted:
        found = _LOWER_BOUND.fullmatch(requirement)
        if found is None:
            raise SystemExit(f"{requirement!r} has no plain lower bound (name>=version) to pin")
        pins.append(f"{found[1]}=={found[2]}")
    return pins


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    with open(root / "pyproject.toml", "rb") as file:
        print("\n".join(lowest_pins(tomllib.load(file))))
