"""Nothing a user did not write is loaded with pickle: a planted training checkpoint or model runs no code."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import SAMPLE, run_cli


class _Planted:
    """Unpickling this runs ``open(path, "w")``: proof that code ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _plant(target: Path, proof: Path) -> None:
    with open(target, "wb") as f:
        pickle.dump({"optimizer": _Planted(proof)}, f)
    with open(target, "rb") as f:  # the pickle itself is live: unpickling it does create the proof file
        pickle.load(f).pop("optimizer").close()
    assert proof.exists()
    proof.unlink()


def _training_data(root: Path) -> dict:
    """Pools (judged documents positive, unjudged ones negative) and teacher scores for the sample's queries."""
    qrels: dict[str, set[str]] = {}
    for line in (SAMPLE / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, _ = line.split("\t")
        qrels.setdefault(q, set()).add(d)
    docs = [json.loads(line)["_id"] for line in (SAMPLE / "corpus.jsonl").read_text().splitlines()]
    pools, scores = [], []
    for q, judged in sorted(qrels.items()):
        negatives = [d for d in docs if d not in judged][:4]
        pools.append(json.dumps({"qid": q, "positives": sorted(judged), "negatives": negatives}))
        for rank, d in enumerate(sorted(judged) + negatives, 1):
            scores.append(f"{q} Q0 {d} {rank} {20.0 - rank} teacher")
    (root / "pools.jsonl").write_text("\n".join(pools) + "\n")
    (root / "scores.trec").write_text("\n".join(scores) + "\n")
    return {"pools": root / "pools.jsonl", "scores": root / "scores.trec"}


def _train_args(tiny_model, data, out) -> list:
    return ["--model", tiny_model, "--output-dir", out, "--queries", SAMPLE, "--corpus", SAMPLE,
            "--pools", data["pools"], "--scores", data["scores"], "--n-negatives", "2", "--batch-size", "2",
            "--steps", "1", "--query-max-length", "16", "--doc-max-length", "32", "--no-progress", "--threads", "1",
            "--device", "cpu"]


def _train(tiny_model, data, out) -> subprocess.CompletedProcess:
    return run_cli(*_train_args(tiny_model, data, out), module="splade_pyserini.train.trainer",
                   env={"HF_HUB_OFFLINE": "1"}, timeout=None)


@pytest.mark.slow  # the CLI in a subprocess
def test_planted_optimizer_state_runs_no_code_on_resume(tmp_path, tiny_model):
    data = _training_data(tmp_path)
    out = tmp_path / "model"
    from splade_pyserini.train.trainer import main as train_main

    assert train_main([str(a) for a in _train_args(tiny_model, data, out)]) == 0  # the checkpoint, made in this process
    (checkpoint,) = sorted((out / "checkpoints").iterdir())
    proof = tmp_path / "code-ran"
    _plant(checkpoint / "optimizer.pt", proof)
    (out / "train_state.json").unlink()  # an interrupted run: `train` resumes from the checkpoint
    again = _train(tiny_model, data, out)
    assert not proof.exists(), "the planted pickle ran code"
    assert again.returncode == 2, again.stderr
    errors = [ln for ln in again.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in again.stderr, again.stderr
    assert "refusing to resume" in errors[0] and "optimizer.pt" in errors[0] and "--no-resume" in errors[0]


@pytest.mark.slow  # the CLI in a subprocess
def test_planted_model_weights_run_no_code(tmp_path, tiny_model):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model, ignore=shutil.ignore_patterns("*.safetensors*", "pytorch_model.bin*"))
    proof = tmp_path / "code-ran"
    _plant(model / "pytorch_model.bin", proof)
    proc = run_cli("encode", "--encoder", model, "--corpus", SAMPLE, "--output", tmp_path / "v", "--device", "cpu",
                   timeout=None)
    assert not proof.exists(), "the planted pickle ran code"
    assert proc.returncode != 0 and not list((tmp_path / "v").glob("vectors-*"))
