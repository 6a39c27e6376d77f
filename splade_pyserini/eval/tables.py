"""What the result tables of :mod:`.significance` and :mod:`.meta` share: one cell format and ``render(fmt)``."""

from __future__ import annotations

import math

import numpy as np

from ..errors import SpladeError


def format_cell(v) -> str:
    """A table cell: empty for None, ``nan``, 4 decimals, or scientific notation below 1e-4."""
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if v != 0 and abs(v) < 1e-4:
            return f"{v:.1e}"
        return f"{v:.4f}"
    return str(v)


class RenderableTable:
    """``render("md" | "latex" | "csv")`` over a class's ``to_markdown``, ``to_latex`` and ``to_csv``."""

    def render(self, fmt: str) -> str:
        fmt = fmt.lower()
        if fmt in ("md", "markdown"):
            return self.to_markdown()
        if fmt in ("latex", "tex"):
            return self.to_latex()
        if fmt == "csv":
            return self.to_csv()
        raise SpladeError(f"unknown table format {fmt!r}; use md, latex or csv.")
