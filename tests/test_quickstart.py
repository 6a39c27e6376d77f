"""The quickstart runs the whole path offline on the embedded default and the bundled sample."""

from __future__ import annotations

import re

import pytest

from helpers import run_cli


@pytest.mark.slow
def test_quickstart_prints_bm25_beside_splade(tmp_path):
    proc = run_cli("quickstart", "--work-dir", tmp_path / "qs", "--device", "cpu",
                   env={"HF_HUB_OFFLINE": "1", "JAVA_HOME": None}, entry_point=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^(BM25|splade-tiny)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", line)
        if m:
            rows[m.group(1)] = [float(x) for x in m.groups()[1:]]
    assert set(rows) == {"BM25", "splade-tiny"}, proc.stdout
    for values in rows.values():
        assert all(0.0 < v <= 1.0 for v in values)
    assert (tmp_path / "qs" / "run.splade.txt").stat().st_size > 0
    assert (tmp_path / "qs" / "run.bm25.txt").stat().st_size > 0
