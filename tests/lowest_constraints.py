"""Print pip constraints that pin each of sesh's own dependencies (the required ones and
every extra but ``dev``) to the lowest version pyproject.toml allows, for
``make test-lowest``: a lower bound that is never installed is a guess."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: tomli, which pytest and mypy need there anyway
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

_LOWER_BOUND = re.compile(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([^,;\s]+)$")


def lowest_pins(pyproject: dict[str, Any]) -> list[str]:
    project = pyproject["project"]
    wanted: list[str] = list(project["dependencies"])
    for extra, requirements in project["optional-dependencies"].items():
        if extra != "dev":  # the project's own tools: their newest is what we use
            wanted += requirements
    pins = []
    for requirement in wanted:
        if requirement.startswith(project["name"] + "["):
            continue  # another extra of ours, pinned through its own requirements
        found = _LOWER_BOUND.fullmatch(requirement)
        if found is None:
            raise SystemExit(f"{requirement!r} has no plain lower bound (name>=version) to pin")
        pins.append(f"{found[1]}=={found[2]}")
    return pins


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    with open(root / "pyproject.toml", "rb") as file:
        print("\n".join(lowest_pins(tomllib.load(file))))
