"""sentence-transformers SparseEncoder folders both ways, with the real library (no mock), on splade-tiny and Vaswani:
ST-built folders load here with ST's own vectors; unrepresentable folders are refused; trained checkpoints load in
``SparseEncoder``; the trained folder's model card; ``--topics`` as an ir_datasets id (cached, and not cached offline).

Equality figures are printed (``pytest -s``) as ``ST-EQUALITY <case> <kind> max_abs_diff=… top20=…/…``.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

# found, not imported: importing sentence-transformers (with datasets, sklearn, pandas) costs ~7 s, paid at collection
# by every pytest-xdist worker; the tests import it when they run
pytestmark = pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                                reason="sentence-transformers is a test dependency (pip install .[test])")

from helpers import as_ranking, run_cli, run_main, run_pyserini_search  # noqa: E402
from test_train_trainer import CRANFIELD, _config, data_files  # noqa: E402,F401  (the tiny training fixture)

REPO = Path(__file__).resolve().parents[1]
needs_cranfield = pytest.mark.skipif(not CRANFIELD.is_dir(), reason="shared/ (Cranfield) is absent")
TOL = 1e-4  # float32: measured differences are ~4e-6 (different kernels, same maths)


def _texts(collection: Path, name: str, limit: int | None = None) -> list[str]:
    out = []
    with open(collection / name) as f:
        for line in f:
            obj = json.loads(line)
            out.append(" ".join(x for x in (obj.get("title", ""), obj["text"]) if x))
            if limit and len(out) == limit:
                break
    return out


def _dense(encoder, texts, kind) -> np.ndarray:
    batch = encoder.encode(texts, kind)
    out = np.zeros((len(texts), encoder.vocab_size), np.float32)
    for i in range(len(batch)):
        terms, weights = batch.row(i)
        out[i, terms] = weights
    return out


def _top(row: np.ndarray, k: int = 20) -> set[int]:
    k = min(k, int((row > 0).sum()))
    return set(np.argsort(-row, kind="stable")[:k].tolist())


def assert_same_vectors(folder, docs, queries, case: str) -> dict:
    """This package's vectors of ``folder`` against sentence-transformers' encode_document / encode_query."""
    from sentence_transformers import SparseEncoder

    from splade_pyserini import load_encoder

    ours = load_encoder(str(folder), device="cpu")
    theirs = SparseEncoder(str(folder), device="cpu")
    figures = {}
    for kind, texts, fn in (("document", docs, theirs.encode_document), ("query", queries, theirs.encode_query)):
        a = _dense(ours, texts, kind)
        b = fn(texts, convert_to_tensor=True, batch_size=16).to_dense().float().numpy()
        assert a.shape == b.shape
        diff = float(np.abs(a - b).max())
        agree = sum(_top(x) == _top(y) for x, y in zip(a, b))
        print(f"ST-EQUALITY {case} {kind} max_abs_diff={diff:.2e} top20={agree}/{len(texts)}")
        assert diff <= TOL, (kind, diff)
        assert agree == len(texts), (kind, agree)
        figures[kind] = diff
    return figures


@pytest.fixture(scope="module")
def st_folders(tmp_path_factory, tiny_model, vaswani):
    """splade-tiny saved by sentence-transformers' own classes: SPLADE; inference-free with IDF query weights
    (from Vaswani) and with ST's default unit weights; and three folders this package cannot represent."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sentence_transformer.modules import Pooling
    from sentence_transformers.sparse_encoder.modules import (Router, SparseAutoEncoder, SparseStaticEmbedding,
                                                              SpladePooling, Transformer)

    root = tmp_path_factory.mktemp("st")

    def mlm(task="fill-mask"):
        return Transformer(str(tiny_model), transformer_task=task)

    SparseEncoder(modules=[mlm(), SpladePooling("max")]).save(str(root / "splade"))
    t = mlm()
    df = np.zeros(t.tokenizer.vocab_size, np.float64)
    docs = _texts(vaswani, "corpus.jsonl")
    for ids in t.tokenizer(docs, add_special_tokens=False)["input_ids"]:
        df[np.unique(ids)] += 1
    idf = np.log(1 + len(docs) / (1 + df)).astype(np.float32)
    import torch

    for name, weight in (("doc-idf", torch.from_numpy(idf)), ("doc-ones", None)):
        t = mlm()
        static = SparseStaticEmbedding(tokenizer=t.tokenizer, weight=weight, frozen=True)
        router = Router.for_query_document(query_modules=[static], document_modules=[t, SpladePooling("max")])
        SparseEncoder(modules=[router], similarity_fn_name="dot").save(str(root / name))
    SparseEncoder(modules=[mlm(), SpladePooling("sum")]).save(str(root / "sum-pooling"))
    SparseEncoder(modules=[mlm(), SpladePooling("max", activation_function="log1p_relu")]).save(str(root / "log1p-relu"))
    dense = mlm("feature-extraction")
    hidden = dense.get_embedding_dimension()
    SparseEncoder(modules=[dense, Pooling(hidden), SparseAutoEncoder(hidden, hidden_dim=4 * hidden, k=16)]).save(
        str(root / "csr"))
    return root


def test_splade_folder_gives_sentence_transformers_vectors(st_folders, vaswani):
    from splade_pyserini.cards import resolve_card

    card = resolve_card(str(st_folders / "splade"))
    assert (card.variant, card.doc_max_length, card.query_max_length) == ("full", 512, 512)
    assert card.model == str(st_folders / "splade")
    assert_same_vectors(st_folders / "splade", _texts(vaswani, "corpus.jsonl", 120), _texts(vaswani, "queries.jsonl"),
                        "splade-tiny")


def test_inference_free_folder_uses_the_static_query_weights(st_folders, vaswani):
    from splade_pyserini import load_encoder
    from splade_pyserini.cards import resolve_card

    card = resolve_card(str(st_folders / "doc-idf"))
    assert card.variant == "doc" and card.query_weights.endswith("model.safetensors")
    assert card.model == str(st_folders / "doc-idf" / "document_0_Transformer")
    queries = _texts(vaswani, "queries.jsonl")
    figures = assert_same_vectors(st_folders / "doc-idf", _texts(vaswani, "corpus.jsonl", 100), queries, "doc-idf")
    assert figures["query"] <= 1e-6  # a product of stored weights: no model arithmetic on this side
    weights = set(load_encoder(str(st_folders / "doc-idf"), device="cpu").encode_queries(queries[:5])[0].values())
    assert len(weights) > 1 and 1.0 not in weights  # IDF weights, not the binary bag
    ones = resolve_card(str(st_folders / "doc-ones"))
    assert ones.variant == "doc" and ones.query_weights == ""  # unit weights: the plain doc variant
    assert_same_vectors(st_folders / "doc-ones", _texts(vaswani, "corpus.jsonl", 20), queries, "doc-ones")


def test_onnx_export_of_an_inference_free_folder_keeps_its_static_query_weights(st_folders, vaswani, tmp_path):
    """export-onnx of a -doc folder with IDF query weights: the graph's integer query weights are the package's."""
    pytest.importorskip("onnxruntime")
    from splade_pyserini import load_encoder
    from splade_pyserini.onnx_export import OnnxQueryEncoder, export_onnx

    folder = st_folders / "doc-idf"
    encoder = load_encoder(str(folder), device="cpu")
    export_onnx(str(folder), tmp_path / "onnx")
    queries = _texts(vaswani, "queries.jsonl")
    want = encoder.quantized_queries(queries)
    assert OnnxQueryEncoder(tmp_path / "onnx", encoder.tokenizer).quantized(queries) == want
    assert len({v for w in want for v in w.values()}) > 2  # IDF weights, not round(1 × 51.2) for every token


@pytest.mark.parametrize("name, words", [("sum-pooling", ["SpladePooling", "'sum'"]),
                                         ("log1p-relu", ["SpladePooling", "'log1p_relu'"]),
                                         ("csr", ["1_Pooling (Pooling)"])])
@pytest.mark.slow  # the CLI in a subprocess
def test_unrepresentable_folder_is_refused_in_one_line(st_folders, name, words, tmp_path):
    folder = st_folders / name
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "d1", "contents": "a boundary layer"}\n')
    proc = run_cli("encode", "--encoder", folder, "--corpus", corpus, "--output", folder.parent / f"out-{name}",
                   timeout=120, cwd=REPO)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: sentence-transformers folder"), proc.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert not (folder.parent / f"out-{name}").exists()


def _quantized_scores(query: np.ndarray, docs: np.ndarray, scale: float = 51.2) -> np.ndarray:
    from splade_pyserini.encoder import quantize

    return quantize(docs, scale) @ quantize(query, scale)


@pytest.mark.slow  # the index in a JVM subprocess
def test_st_folder_as_encoder_for_encode_index_search_and_the_pyserini_plugin(st_folders, vaswani, tmp_path):
    """CLI encode/index/search and `python -m pyserini.search.lucene --encoder <ST folder>`: the run's scores are
    the dot products of sentence-transformers' own quantised vectors."""
    from sentence_transformers import SparseEncoder

    from splade_pyserini.corpus import read_corpus
    from splade_pyserini.topics import read_topics

    folder = st_folders / "doc-idf"
    corpus = tmp_path / "corpus.jsonl"
    with open(vaswani / "corpus.jsonl") as src:
        corpus.write_text("".join(next(src) for _ in range(300)))
    topics = tmp_path / "topics.tsv"
    queries = dict(list(read_topics(vaswani).items())[:12])
    topics.write_text("".join(f"{q}\t{t}\n" for q, t in queries.items()))
    ours, plugin = tmp_path / "ours.trec", tmp_path / "plugin.trec"
    # our CLI and Pyserini's in this process (a Python start less each)
    for args in (["encode", "--encoder", folder, "--corpus", corpus, "--output", tmp_path / "vec", "--device", "cpu"],
                 ["index", "--vectors", tmp_path / "vec", "--index", tmp_path / "index"],
                 ["search", "--index", tmp_path / "index", "--encoder", folder, "--topics", topics, "--output", ours,
                  "--hits", "20"]):
        code, _, err = run_main(*args)
        assert code == 0, err[-3000:]
    run_pyserini_search("--index", tmp_path / "index", "--topics", topics, "--encoder", folder, "--impact",
                        "--output", plugin, "--hits", "20")  # in this process: the start-up path is test_pipeline's
    run = [line.split()[:5] for line in open(ours)]
    assert as_ranking(run) == as_ranking([line.split()[:5] for line in open(plugin)])

    st = SparseEncoder(str(folder), device="cpu")
    docs = list(read_corpus(corpus))
    d = st.encode_document([x.text for x in docs], convert_to_tensor=True).to_dense().numpy()
    q = st.encode_query(list(queries.values()), convert_to_tensor=True).to_dense().numpy()
    ids = [x.id for x in docs]
    for i, qid in enumerate(queries):
        expected = _quantized_scores(q[i], d)
        got = {r[2]: float(r[4]) for r in run if r[0] == qid}
        assert len(got) == min(20, int((expected > 0).sum())) > 0  # documents sharing no term are not hits
        assert {doc: expected[ids.index(doc)] for doc in got} == got  # every hit's score
        assert sorted(got.values(), reverse=True) == sorted(expected.tolist(), reverse=True)[:len(got)]  # the top


@needs_cranfield
@pytest.mark.parametrize("variant", ["full", "lexical", "doc"])
def test_trained_checkpoint_loads_in_sparse_encoder_with_the_same_vectors(data_files, tmp_path, variant):
    from splade_pyserini.cards import resolve_card
    from splade_pyserini.train.config import make_config
    from splade_pyserini.train.trainer import train

    out = tmp_path / "model"
    train(make_config(_config(data_files, out, steps=1, variant=variant)))
    assert (out / "modules.json").is_file() and (out / "README.md").is_file()
    assert resolve_card(str(out)).variant == variant  # splade_card.toml still decides here
    docs = _texts(CRANFIELD, "corpus.jsonl", 30)
    queries = _texts(CRANFIELD, "queries.jsonl", 20) + [" ".join(["boundary layer flow"] * 120)]  # > 256 tokens
    assert_same_vectors(out, docs, queries, f"trained-{variant}")
    (out / "splade_card.toml").rename(tmp_path / "card.toml")  # the ST files alone describe the same encoder
    st_card = resolve_card(str(out))
    assert (st_card.variant, st_card.query_max_length, st_card.doc_max_length) == (variant, 256, 512)
    if variant == "full":  # written again over a finished folder: the module folders are replaced, not merged
        (tmp_path / "card.toml").rename(out / "splade_card.toml")
        train(make_config(_config(data_files, out, steps=1, variant="doc", resume=False)))
        assert not (out / "1_SpladePooling").exists() and (out / "document_0_Transformer").is_dir()
        assert resolve_card(str(out)).variant == "doc"


@needs_cranfield
def test_trained_checkpoint_model_card(data_files, tmp_path):
    from huggingface_hub import ModelCard

    from splade_pyserini.train.model_card import model_card
    from splade_pyserini.train.config import make_config
    from splade_pyserini.train.trainer import train
    from splade_pyserini.cards import EncoderCard

    out = tmp_path / "my-splade"
    state = train(make_config(_config(data_files, out, steps=2, kl_weight=0.9, margin_mse_weight=0.1)))
    card = ModelCard.load(out / "README.md")
    meta = card.data.to_dict()
    assert meta["library_name"] == "sentence-transformers" and meta["pipeline_tag"] == "feature-extraction"
    assert meta["license"] == "apache-2.0"  # from the warm start's LICENSE (splade-tiny: Apache-2.0)
    assert {"splade", "sparse-encoder", "sentence-transformers"} <= set(meta["tags"])
    assert "base_model" not in meta  # a local warm start has no Hub id
    text = card.text
    assert "0.9 × KL + 0.1 × MarginMSE" in text and "λd = 0.02, λq = 0.01" in text
    assert f"{state['history'][-1]['loss']:.4g}" in text and "| 2 |" in text  # the last step's logged loss
    assert f"{state['training_queries']} used for training" in text and "`pools.jsonl`" in text
    assert (out / "splade_card.toml").read_text().strip() in text
    assert 'SparseEncoder("my-splade")' in text and "Not measured by the trainer" in text

    # A Hub warm start is the base model; measured metrics go into the card.
    state = json.loads((out / "train_state.json").read_text())
    state["init"]["model"] = "naver/splade-v3"
    text = model_card(EncoderCard(name="x", model="."), state, {"Vaswani": {"after": {"ndcg@10": 0.41234}}})
    assert ModelCard(text).data.to_dict()["base_model"] == "naver/splade-v3"
    assert "| after | 0.4123 |" in text


IRDS_ID = "splade-pyserini-test/vaswani-queries"


@pytest.mark.slow  # an index (a JVM in a subprocess)
def test_topics_from_an_ir_datasets_id(vaswani, tmp_path, tiny_model):
    """A registered (here: local) ir_datasets id is read like a topic file, by read_topics and by `search`."""
    import ir_datasets
    from ir_datasets.formats import TsvQueries
    from ir_datasets.util import LocalDownload

    from splade_pyserini.cli import main
    from splade_pyserini.topics import read_topics

    queries = read_topics(vaswani)
    tsv = tmp_path / "queries.tsv"
    tsv.write_text("".join(f"{q}\t{t}\n" for q, t in list(queries.items())[:10]))
    if IRDS_ID not in ir_datasets.registry:
        ir_datasets.registry.register(IRDS_ID, ir_datasets.Dataset(TsvQueries(LocalDownload(tsv))))
    assert read_topics(IRDS_ID) == read_topics(tsv) == dict(list(queries.items())[:10])
    assert read_topics("irds:" + IRDS_ID) == read_topics(tsv)

    from splade_pyserini.index import build_index
    from splade_pyserini.vectors import encode_corpus
    from splade_pyserini import load_encoder

    encode_corpus(load_encoder(str(tiny_model), device="cpu"), vaswani, tmp_path / "vec", limit=200, progress=False)
    build_index(tmp_path / "vec", tmp_path / "index")
    runs = {}
    for name, topics in (("file", str(tsv)), ("irds", IRDS_ID)):
        runs[name] = tmp_path / f"{name}.trec"
        assert main(["search", "--index", str(tmp_path / "index"), "--encoder", str(tiny_model), "--topics", topics,
                     "--output", str(runs[name]), "--hits", "10"]) == 0
    assert runs["file"].read_text() == runs["irds"].read_text() and runs["file"].read_text().count("\n") == 100


@pytest.mark.slow  # the CLI in a subprocess
def test_uncached_ir_datasets_id_offline_is_one_line_error(tmp_path, tiny_model):
    """No network (proxies pointed at a closed port) and an empty ir_datasets cache: one error line, status 2."""
    env = {"IR_DATASETS_HOME": tmp_path / "irds", "NO_PROXY": None, "no_proxy": None}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[var] = "http://127.0.0.1:9"
    proc = run_cli("search", "--index", tmp_path / "index", "--encoder", tiny_model, "--topics", "vaswani", "--output",
                   tmp_path / "run.trec", timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert "ir_datasets 'vaswani'" in errors[0] and "not in the local cache" in errors[0]
    assert str(tmp_path / "irds") in errors[0] and not (tmp_path / "run.trec").exists()
