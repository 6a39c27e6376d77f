"""The encoding benchmark runs both paths on the same texts and finds the same integer vectors as Pyserini's."""

from __future__ import annotations

import pytest

from helpers import run_cli


@pytest.mark.slow
def test_bench_encode_agrees_with_pyserini(vaswani):
    proc = run_cli("bench", "encode", "--encoder", "splade-tiny", "--corpus", vaswani, "--limit", "64", "--device",
                   "cpu", "--peers", "pyserini", entry_point=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    assert out[-1].startswith("ratio_vs_pyserini=") and float(out[-1].split("=")[1]) > 0
    checks = dict(line[len("check "):].split(": ") for line in out if line.startswith("check "))
    # the same fp32 maths: integer weights agree, bar a rounding flip at an exact .5 boundary
    assert float(checks["identical_int_vectors_vs_pyserini"]) >= 0.95
    assert int(checks["max_int_weight_diff_vs_pyserini"]) <= 1
    assert any(line.startswith("pyserini SpladeDocumentEncoder") for line in out), "the real Pyserini encoder ran"
