"""The quickstart runs the whole path offline on the embedded default and the bundled sample."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_quickstart_prints_bm25_beside_splade(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("JAVA_HOME", None)
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "splade-pyserini"), "quickstart",
                           "--workdir", str(tmp_path / "qs"), "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=900)
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
