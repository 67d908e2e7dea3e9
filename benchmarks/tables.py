"""How the benchmarks write their results."""

from __future__ import annotations


def table(rows: list[list[str]]) -> str:
    """A Markdown table (the first row is the header)."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)
