"""Strip outputs from the notebooks (or, with ``--check``, fail if any carries outputs).

    python notebooks/strip_outputs.py            # strip every notebooks/*.ipynb in place
    python notebooks/strip_outputs.py --check    # exit 1 and list the notebooks that carry outputs
    python notebooks/strip_outputs.py a.ipynb    # only these files

Stripped: code-cell outputs and execution counts, and volatile metadata (execution timings, widget state,
collapsed/scrolled flags). Uses only the standard library (the files are JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CELL_META_DROP = ("execution", "collapsed", "scrolled", "ExecuteTime")
NB_META_DROP = ("widgets",)


def dirty(nb: dict) -> list[str]:
    """What in ``nb`` is not stripped (empty when clean)."""
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code":
            if cell.get("outputs"):
                problems.append(f"cell {i}: outputs")
            if cell.get("execution_count") is not None:
                problems.append(f"cell {i}: execution_count")
        if any(k in cell.get("metadata", {}) for k in CELL_META_DROP):
            problems.append(f"cell {i}: volatile metadata")
    if any(k in nb.get("metadata", {}) for k in NB_META_DROP):
        problems.append("notebook: widget state")
    return problems


def strip(nb: dict) -> dict:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        for key in CELL_META_DROP:
            cell.get("metadata", {}).pop(key, None)
    for key in NB_META_DROP:
        nb.get("metadata", {}).pop(key, None)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if a notebook carries outputs")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(HERE.glob("*.ipynb"))
    bad = 0
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        problems = dirty(nb)
        if not problems:
            continue
        if args.check:
            bad += 1
            print(f"{path}: {', '.join(problems[:5])}{' …' if len(problems) > 5 else ''}")
        else:
            path.write_text(json.dumps(strip(nb), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"stripped {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
