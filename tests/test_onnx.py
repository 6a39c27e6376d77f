"""ONNX query encoding inside Anserini (splade_pyserini.onnx_export + the Java SpladePyseriniEncoder).

splade-tiny is exported once (float64 graph); its integer query weights are compared with the package's on every
Vaswani and Cranfield query, through onnxruntime in Python and through Anserini's bundled onnxruntime in Java
(the encoder class in a Java subprocess). A ``regression export --onnx`` config is then reproduced by
``regression run`` and by Anserini's own runner, with the same run as the package's pre-encoded topics.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx", reason="export-onnx needs the onnx package (pip install 'splade-pyserini[onnx]')")

from helpers import extension_in_this_jvm, run_python  # noqa: E402
from splade_pyserini import onnx_export, regression  # noqa: E402
from splade_pyserini.errors import SpladeError  # noqa: E402
from splade_pyserini.topics import read_topics  # noqa: E402

ENCODER_CLASS = "io.anserini.encoder.sparse.SpladePyseriniEncoder"


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("onnx") / "splade-tiny"
    onnx_export.export_onnx(str(tiny_model), folder)
    return folder


@pytest.fixture(scope="module")
def queries(vaswani, cranfield) -> dict[str, tuple[list[str], list[str]]]:
    out = {}
    for name, folder in (("vaswani", vaswani), ("cranfield", cranfield)):
        topics = read_topics(folder)
        out[name] = (list(topics), list(topics.values()))
    return out


@pytest.fixture(scope="module")
def package_weights(tiny_encoder, queries) -> dict[str, list[dict[str, int]]]:
    return {name: tiny_encoder.quantized_queries(texts) for name, (_, texts) in queries.items()}


def differing(a: list[dict[str, int]], b: list[dict[str, int]]) -> list[tuple[int, str, int | None, int | None]]:
    return [(i, t, x.get(t), y.get(t)) for i, (x, y) in enumerate(zip(a, b)) for t in sorted(set(x) | set(y))
            if x.get(t) != y.get(t)]


def test_export_writes_a_float64_graph_and_its_vocabulary(exported, tiny_encoder):
    config = onnx_export.read_config(exported)
    assert config["variant"] == "full" and config["scale"] == 51.2 and config["query_max_length"] == 256
    assert config["lowercase"] is True and config["precision"] == "float64" and config["erf_replaced"] > 0
    tokens = (exported / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert tokens == [tiny_encoder.vocab[i] for i in range(len(tokens))] and len(tokens) == 30522
    model = onnx.load(str(exported / "model.onnx"))
    assert [i.name for i in model.graph.input] == ["input_ids"]
    outputs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert outputs == {"output_idx": onnx.TensorProto.INT64, "output_weights": onnx.TensorProto.DOUBLE}
    assert "Erf" not in {n.op_type for n in model.graph.node}  # no float64 Erf in ONNX Runtime: replaced
    assert model.ir_version <= 9 and model.opset_import[0].version <= 20  # Anserini's onnxruntime 1.17 reads it


def test_erf64_is_erf_to_double_precision():
    import torch

    x = torch.linspace(-7, 7, 200_001, dtype=torch.float64)
    assert float((onnx_export.erf64(x) - torch.special.erf(x)).abs().max()) < 1e-15


def test_onnxruntime_weights_equal_the_packages(exported, tiny_encoder, queries, package_weights):
    runner = onnx_export.OnnxQueryEncoder(exported, tiny_encoder.tokenizer)
    for name, (_, texts) in queries.items():
        got = runner.quantized(texts)
        assert differing(got, package_weights[name]) == [], name
        assert sum(map(len, got)) > 10 * len(texts)
    total, diff = onnx_export.compare_weights(exported, tiny_encoder, queries["vaswani"][1][:5])
    assert diff == [] and total == sum(map(len, package_weights["vaswani"][:5]))


def run_java_encoder(folder: Path, qids, texts, via: str = "env") -> list[dict[str, int]]:
    """The Java encoder class in a subprocess (Anserini's fat jar + the extension): pre-encoded topics back."""
    from splade_pyserini import javabuild
    from splade_pyserini.anserini import java_command

    jar = javabuild.build()
    cmd = java_command(ENCODER_CLASS, [], [str(jar)])
    env = dict(os.environ)
    env.pop(onnx_export.ENVIRONMENT, None)
    if via == "env":
        env[onnx_export.ENVIRONMENT] = str(folder)
    else:
        cmd.insert(1, f"-D{onnx_export.PROPERTY}={folder}")
    stdin = "".join(ln + "\n" for ln in onnx_export.text_topics_lines(qids, texts))
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert [ln.split("\t")[0] for ln in lines] == list(qids)
    out = []
    for ln in lines:
        counts: dict[str, int] = {}
        for token in ln.split("\t")[1].split():
            counts[token] = counts.get(token, 0) + 1
        out.append(counts)
    return out


@pytest.mark.slow  # a JVM in a subprocess
def test_java_encoder_in_anserini_gives_the_packages_weights(exported, queries, package_weights):
    for name, (qids, texts) in queries.items():
        got = run_java_encoder(exported, qids, texts, via="env" if name == "vaswani" else "property")
        assert differing(got, package_weights[name]) == [], name


@pytest.mark.slow  # a JVM in a subprocess
def test_java_encoder_without_a_model_says_how_to_make_one(tmp_path):
    from splade_pyserini import javabuild
    from splade_pyserini.anserini import java_command

    env = {k: v for k, v in os.environ.items() if k != onnx_export.ENVIRONMENT}
    env[onnx_export.ENVIRONMENT] = str(tmp_path)
    proc = subprocess.run(java_command(ENCODER_CLASS, [], [str(javabuild.build())]), input="1\tq\n",
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert f"{tmp_path} has no splade_onnx.json; write it with: splade-pyserini export-onnx" in proc.stderr


@pytest.mark.parametrize("variant", ["lexical", "doc"])
def test_variant_rules_are_in_the_graph(variant, tiny_model, queries, tmp_path):
    from splade_pyserini import load_encoder

    encoder = load_encoder(str(tiny_model), device="cpu", variant=variant)
    onnx_export.export_onnx(str(tiny_model), tmp_path / variant, variant=variant)
    assert onnx_export.read_config(tmp_path / variant)["variant"] == variant
    texts = queries["cranfield"][1][:40]
    got = onnx_export.OnnxQueryEncoder(tmp_path / variant, encoder.tokenizer).quantized(texts)
    want = encoder.quantized_queries(texts)
    assert differing(got, want) == []
    own = [set(encoder.tokenizer.tokenize(t)) for t in texts]
    assert all(set(w) <= o for w, o in zip(got, own))  # no expansion: only the query's own tokens
    if variant == "doc":
        assert {v for w in got for v in w.values()} == {51}  # binary bag of words: round(1 × 51.2)


def test_export_refuses_what_the_java_side_cannot_tokenize(tiny_encoder):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    assert onnx_export._tokenizer_settings(tiny_encoder.tokenizer, "tiny")["lowercase"] is True
    bpe = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()))
    with pytest.raises(SpladeError, match="WordPiece tokenizers only"):
        onnx_export._tokenizer_settings(bpe, "a BPE model")


def test_onnx_regression_config_reproduces_in_both_runners(sample_pipeline, tiny_encoder, exported, tmp_path):
    """The bundled sample exported with --onnx: Anserini's run with the Java encoder equals the run of the package's
    pre-encoded weights, and the config passes in this package's runner and in Anserini's own (the Java encoder's
    weights on every Cranfield and Vaswani query: test_java_encoder_in_anserini_gives_the_packages_weights)."""
    from splade_pyserini.anserini import run_java

    out = tmp_path / "regressions"
    work = tmp_path / "export-work"
    path = regression.export_regression(tiny_encoder, sample_pipeline["collection"], output=out,
                                        vectors=sample_pipeline["vectors"], index=sample_pipeline["index"],
                                        work_dir=work, onnx=True, log=lambda m: None)
    data = regression.load_config(path).data
    (model,) = data["models"]
    assert model["params"] == "-impact -pretokenized -encoder SpladePyserini -hits 1000"
    assert data["splade_pyserini"]["onnx_model"] == "onnx/sample.splade-tiny.onnx"
    assert (out / "onnx" / "sample.splade-tiny.onnx" / "model.onnx").is_file()
    (topic,) = data["topics"]
    with gzip.open(out / regression.TOPICS_DIR / topic["path"], "rt", encoding="utf-8") as f:
        first = f.readline().rstrip("\n").split("\t")
    qids, texts = zip(*read_topics(sample_pipeline["collection"]).items())
    assert first == [qids[0], " ".join(texts[0].split())]  # raw text: Anserini encodes it

    # the run Anserini made with the Java encoder = the run of the package's own pre-encoded weights
    onnx_run = work / "runs" / regression.run_file_name(data, model, topic)
    pre = tmp_path / "pre-encoded.tsv"
    pre.write_text("".join(ln + "\n" for ln in regression.topics_lines(qids, tiny_encoder.quantized_queries(texts))))
    plain_run = tmp_path / "plain.txt"
    run_java("io.anserini.search.SearchCollection",
             ["-index", str(sample_pipeline["index"]), "-topics", str(pre), "-topicReader", "TsvString",
              "-output", str(plain_run), "-impact", "-pretokenized", "-hits", "1000"], quiet=True)
    assert onnx_run.read_text() == plain_run.read_text()

    report = regression.run_regression(path, index=sample_pipeline["index"], log=lambda m: None)
    assert report.ok, report.summary()
    assert len([c for c in report.checks if c.kind == "metric"]) == 4
    report, log = regression.run_with_anserini(path, corpus_path=sample_pipeline["vectors"], log=lambda m: None)
    assert report.ok and len([c for c in report.checks if c.kind == "metric"]) == 4, log[-3000:]


PYSERINI_ONNX = """
import json, sys
from pyserini.search.lucene import LuceneImpactSearcher
searcher = LuceneImpactSearcher(sys.argv[1], "SpladePyserini", 0, "onnx")
print(json.dumps([[(h.docid, h.score) for h in searcher.search(q, k=20)] for q in json.loads(sys.argv[2])]))
"""


def test_pyserini_onnx_encoder_name_finds_the_class(cranfield_pipeline, tiny_encoder, exported, queries):
    """Pyserini's --onnx-encoder SpladePyserini path (LuceneImpactSearcher, encoder type onnx) in a JVM that has the
    extension jar: this process's when it has (or can still be given) the jar, the model named by the class's
    system property (its environment variable is fixed once the JVM runs); else a fresh Python whose JVM the
    package's start-up hook gives the jar, the model named by the environment. Same hits and scores as SpladeSearcher."""
    from splade_pyserini.search import SpladeSearcher

    texts = queries["cranfield"][1][:8]
    if extension_in_this_jvm():
        from pyserini.search.lucene import LuceneImpactSearcher

        from splade_pyserini.anserini import autoclass

        system = autoclass("java.lang.System")
        before = system.getProperty(onnx_export.PROPERTY)
        system.setProperty(onnx_export.PROPERTY, str(exported))
        try:
            pyserini = LuceneImpactSearcher(str(cranfield_pipeline["index"]), "SpladePyserini", 0, "onnx")
            try:
                got = [[[h.docid, h.score] for h in pyserini.search(q, k=20)] for q in texts]
            finally:
                pyserini.close()
        finally:
            if before is None:
                system.clearProperty(onnx_export.PROPERTY)
            else:
                system.setProperty(onnx_export.PROPERTY, before)
    else:
        proc = run_python(PYSERINI_ONNX, cranfield_pipeline["index"], json.dumps(texts),
                          env={onnx_export.ENVIRONMENT: exported}, timeout=None)
        assert proc.returncode == 0, proc.stderr[-2000:]
        got = json.loads(proc.stdout.strip().splitlines()[-1])
    searcher = SpladeSearcher(cranfield_pipeline["index"], tiny_encoder)
    want = [[[d, float(s)] for d, s in searcher.search(q, k=20)] for q in texts]
    assert got == want
