"""Anserini regression configs (splade_pyserini.regression): the committed configs reproduce exactly, stock
Anserini's own runner accepts them, and a changed expected value fails with a diff naming what differs.

The corpora are the session pipelines' vectors (tests/conftest.py: splade-tiny on Cranfield and Vaswani, encoded as
the configs' ``splade_pyserini.encode`` line says: ``--shard-size 5000 --device cpu``). Java work runs in
subprocesses (the CLI, Anserini's classes), so it does not matter what JVM this test session has started.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import run_cli
from splade_pyserini import regression, vector_pins
from splade_pyserini.errors import SpladeError
from splade_pyserini.runs import read_qrels, read_run

REPO = Path(__file__).resolve().parents[1]
REGRESSIONS = REPO / "regressions"
CONFIGS = {name: REGRESSIONS / f"{name}.splade-tiny.yaml" for name in ("cranfield", "vaswani")}


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli("regression", *args, cwd=cwd or REPO, env=env, timeout=None)


def load(name: str) -> dict:
    return yaml.safe_load(CONFIGS[name].read_text())


def copy_config(name: str, folder: Path) -> Path:
    """The committed config and its topics/qrels, copied into ``folder`` (to be edited)."""
    data = load(name)
    (folder / regression.TOPICS_DIR).mkdir(parents=True, exist_ok=True)
    pinned = [data["splade_pyserini"]["vectors_boundary"]] if data["splade_pyserini"].get("vectors_boundary") else []
    for t in data["topics"]:
        for f in (t["path"], t["qrel"], *pinned):
            shutil.copy(REGRESSIONS / regression.TOPICS_DIR / f, folder / regression.TOPICS_DIR / f)
    target = folder / CONFIGS[name].name
    shutil.copy(CONFIGS[name], target)
    return target


# --- the committed files -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_committed_config_follows_anserini_schema(name):
    d = load(name)
    assert d["collection_class"] == "JsonVectorCollection"
    assert d["generator_class"] == "DefaultLuceneDocumentGenerator"
    assert d["index_options"].split()[:2] == ["-impact", "-pretokenized"]
    assert isinstance(d["index_threads"], int) and d["corpus_path"] == f"collections/splade-tiny/{name}"
    assert set(d["index_stats"]) == {"documents", "documents (non-empty)", "total terms"}
    assert d["index_stats"]["documents"] == {"cranfield": 1400, "vaswani": 11429}[name]
    for m in d["metrics"]:
        assert m["command"] == "bin/trec_eval" and m["params"].startswith("-c -m ")
        assert m["separator"] == "\t" and m["parse_index"] == 2 and m["metric_precision"] == 4
    assert [m["metric"] for m in d["metrics"]] == ["MAP", "nDCG@10", "R@100", "R@1000"]
    assert d["topic_reader"] == "TsvInt"
    (topic,) = d["topics"]
    assert set(topic) == {"name", "id", "path", "qrel"}
    (model,) = d["models"]
    assert model["params"] == "-impact -pretokenized -hits 1000"
    assert set(model["results"]) == {m["metric"] for m in d["metrics"]}
    assert all(len(v) == 1 and 0 < v[0] <= 1 for v in model["results"].values())
    # small files only: no vectors, no index
    files = [p for p in REGRESSIONS.rglob("*") if p.is_file()]
    assert all(p.stat().st_size < 300_000 for p in files), [(p.name, p.stat().st_size) for p in files]


def test_committed_topics_are_the_encoders_quantized_queries(cranfield, tiny_encoder):
    d = load("cranfield")
    topics = regression.read_pre_encoded_topics(REGRESSIONS / regression.TOPICS_DIR / d["topics"][0]["path"])
    queries = [json.loads(line) for line in open(cranfield / "queries.jsonl")]
    assert len(topics) == len(queries) == 225
    picked = queries[:6] + queries[-3:]
    expected = tiny_encoder.quantized_queries([q["text"] for q in picked])
    for q, weights in zip(picked, expected):
        assert topics[q["_id"]] == weights
    # the raw format: tokens repeated `weight` times, whitespace-separated, after the id and a tab
    with gzip.open(REGRESSIONS / regression.TOPICS_DIR / d["topics"][0]["path"], "rt") as f:
        qid, _, body = f.readline().rstrip("\n").partition("\t")
    token, weight = next(iter(expected[0].items()))
    assert qid == picked[0]["_id"] and body.split()[:weight] == [token] * weight
    qrels = read_qrels(REGRESSIONS / regression.TOPICS_DIR / d["topics"][0]["qrel"])
    assert qrels == read_qrels(cranfield)


# --- run: exact reproduction ---------------------------------------------------------------------------------------
@pytest.mark.slow  # a JVM or the CLI in a subprocess
@pytest.mark.parametrize("name", ["cranfield", "vaswani"])
def test_run_reproduces_the_committed_config(name, request, tmp_path):
    pipeline = request.getfixturevalue(f"{name}_pipeline")
    report = tmp_path / "report.json"
    proc = cli("run", CONFIGS[name], "--corpus-path", pipeline["vectors"], "--work-dir", tmp_path / "work",
               "--output", report)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["ok"] and all(c["ok"] for c in result["checks"])
    assert {c["name"] for c in result["checks"] if c["kind"] == "stat"} == {"documents", "documents (non-empty)",
                                                                             "total terms"}
    # the session's vectors are the pinned ones (this machine) or re-encoded ones whose differences are explained
    (vectors,) = [c for c in result["checks"] if c["kind"] == "vectors"]
    assert vectors["actual"] in ("identical", "re-encoded"), vectors
    assert ("on the pinned vectors" if vectors["actual"] == "identical" else "on re-encoded vectors") in proc.stdout
    assert len([c for c in result["checks"] if c["kind"] == "metric"]) == 4
    # SearchCollection on the pre-encoded topics returns what `splade-pyserini search` returned
    (run_path,) = result["runs"].values()
    ours, theirs = read_run(run_path), read_run(pipeline["run"])
    assert ours.keys() == theirs.keys()
    assert all(ours[q] == theirs[q] for q in ours)


def test_changed_expected_values_fail_with_a_readable_diff(exported_sample, sample_pipeline, tmp_path):
    config = tmp_path / exported_sample.name  # the bundled sample's config (a whole collection proves nothing more)
    shutil.copytree(exported_sample.parent / regression.TOPICS_DIR, tmp_path / regression.TOPICS_DIR)
    shutil.copy(exported_sample, config)
    d = yaml.safe_load(config.read_text())
    topic = d["topics"][0]["name"]
    expected = d["models"][0]["results"]["nDCG@10"][0]
    wrong = round(expected + 0.0123, 4)
    terms = d["index_stats"]["total terms"]
    text = config.read_text()
    text = text.replace(f"      nDCG@10:\n        - {expected:.4f}", f"      nDCG@10:\n        - {wrong:.4f}")
    text = text.replace(f"  total terms: {terms}", f"  total terms: {terms + 1}")
    assert text != config.read_text()
    config.write_text(text)
    proc = cli("run", config, "--index", sample_pipeline["index"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED: 2 of 7 checks differ" in proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if "nDCG@10" in ln)
    assert f"topics '{topic}'" in line and f"expected {wrong:.4f}" in line and f"actual {expected:.4f}" in line
    line = next(ln for ln in proc.stderr.splitlines() if "total terms" in ln)
    assert f"expected {terms + 1}" in line and f"actual {terms}" in line
    assert f"[OK  ] MAP on topics '{topic}'" in proc.stdout


# --- queries longer than Lucene's default clause limit ------------------------------------------------------------
def long_query(vectors: Path, terms: int = 1500) -> dict[str, int]:
    """A query of ``terms`` distinct index terms (from the shards), weights 1..7."""
    from splade_pyserini.vectors import shard_files

    query: dict[str, int] = {}
    for shard in shard_files(vectors):
        for line in open(shard, encoding="utf-8"):
            for term in json.loads(line)["vector"]:
                query.setdefault(term, 1 + len(query) % 7)
                if len(query) == terms:
                    return query
    raise AssertionError(f"{vectors} holds fewer than {terms} terms")


def test_a_topic_of_more_than_1024_terms_is_searched(cranfield_pipeline, tmp_path):
    """Lucene allows 1,024 clauses per query by default, and a SPLADE query has one per term. Stock SearchCollection
    logs TooManyClauses and leaves such a query out of its run; `regression run` searches through the extension's
    SearchCollectionMain (the limit lifted), and the run holds the package's own hits for it."""
    from splade_pyserini import javabuild, javaext
    from splade_pyserini.anserini import run_java

    if javabuild.extension_jar() is None:
        pytest.skip("no javac >= 21 to build the Java extension")
    query = long_query(cranfield_pipeline["vectors"])
    short = dict(list(query.items())[:5])
    config = copy_config("cranfield", tmp_path)
    topics = tmp_path / regression.TOPICS_DIR / load("cranfield")["topics"][0]["path"]
    regression.export._write_gzip_text(topics, "".join(ln + "\n" for ln in regression.topics_lines(["1", "2"],
                                                                                                  [query, short])))
    # stock SearchCollection: the long query is missing from the run (exit 0), so the test can tell
    stock_run = tmp_path / "stock.txt"
    log = run_java("io.anserini.search.SearchCollection",
                   ["-index", str(cranfield_pipeline["index"]), "-topics", str(topics), "-topicReader", "TsvInt",
                    "-output", str(stock_run), "-impact", "-pretokenized", "-hits", "1000"], quiet=True)
    assert "TooManyClauses" in log and set(read_run(stock_run)) == {"2"}

    report = tmp_path / "report.json"
    proc = cli("run", config, "--index", cranfield_pipeline["index"], "--work-dir", tmp_path / "work", "--output", report)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]  # searched; metrics differ from the config's
    result = json.loads(report.read_text())
    assert all(c["ok"] for c in result["checks"] if c["kind"] == "stat")
    (run_path,) = result["runs"].values()
    ours = read_run(run_path)
    with javaext.BatchSearcher(cranfield_pipeline["index"]) as searcher:  # the package's own search
        theirs = searcher.search([query, short], ["1", "2"], k=1000, threads=1, scale=1.0)
    assert len(query) > 1024 and ours.keys() == {"1", "2"}
    for qid, hits in theirs.items():  # a run file holds scores to 6 decimals
        assert len(hits) > 100 and ours[qid] == {docid: round(score, 6) for docid, score in hits}


def test_a_long_topic_without_the_extension_is_a_clear_error(cranfield_pipeline, tmp_path, monkeypatch):
    from splade_pyserini import javabuild, javaext

    monkeypatch.setattr(javabuild, "extension_jar", lambda: None)
    d = load("cranfield")
    topics = tmp_path / "topics.tsv"
    topics.write_text("".join(ln + "\n" for ln in regression.topics_lines(["1"], [long_query(
        cranfield_pipeline["vectors"])])))
    with pytest.raises(SpladeError, match="more than Lucene's 1,024 terms.*Java extension"):
        regression.search(d, d["topics"][0], d["models"][0], cranfield_pipeline["index"], topics, tmp_path / "run.txt")


@pytest.mark.parametrize("args", [["export", "--encoder", "splade-tiny", "--collection", ".", "--hits", "0"],
                                  ["export", "--encoder", "splade-tiny", "--collection", ".", "--metric-precision", "-1"],
                                  ["export", "--encoder", "splade-tiny", "--collection", ".", "--shard-size", "0"],
                                  ["export", "--encoder", "splade-tiny", "--collection", ".", "--index-threads", "-2"],
                                  ["run", "missing.yaml", "--index-threads", "0"]])
def test_numbers_below_one_are_refused_before_any_work(args):
    from helpers import run_main

    code, _, err = run_main("regression", *args)  # argparse: before the encoder is loaded or anything is read
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"argument {args[-2]}: {args[-1]} must be above 0" in err


# --- stock Anserini accepts the exported config -------------------------------------------------------------------
def test_anserinis_own_runner_reproduces_an_exported_config(exported_sample, sample_pipeline, tmp_path):
    """ReproduceFromDocumentCollection reads the YAML (Jackson), builds the IndexCollection / IndexReaderUtils /
    SearchCollection / trec_eval commands from its fields, and verifies stats and metrics. The config is the one
    exported from this session's vectors (pinned to them), so Anserini's exact statistics hold on any CPU; the
    encode output folder goes to stock IndexCollection as it is (its record file is not read as documents)."""
    work = tmp_path / "anserini"
    proc = cli("run", exported_sample, "--runner", "anserini", "--corpus-path", sample_pipeline["vectors"],
               "--work-dir", work, "--output", tmp_path / "report.json", "--verbose")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    log = proc.stderr
    assert "Index statistics successfully verified!" in log
    assert "io.anserini.index.IndexCollection -collection JsonVectorCollection" in log
    reader = yaml.safe_load(exported_sample.read_text())["topic_reader"]
    assert f"-topicReader {reader}" in log and "-impact -pretokenized -hits 1000" in log
    checks = json.loads((tmp_path / "report.json").read_text())["checks"]
    metrics = [c for c in checks if c["kind"] == "metric"]
    assert len(metrics) == 4 and all(c["ok"] and c["actual"] == c["expected"] for c in metrics)
    assert list((work / "runs").glob("run.*.txt")) and (work / "indexes").is_dir()


@pytest.mark.slow  # a JVM or the CLI in a subprocess
def test_anserinis_splade_configs_load_and_need_their_corpus(tmp_path):
    names = regression.anserini_configs("splade")
    assert "dl20-passage.splade-v3.onnx" in names
    for name in names:
        cfg = regression.load_config(name)
        assert cfg.data["collection_class"] == "JsonVectorCollection"
    proc = cli("run", "dl20-passage.splade-v3.onnx", "--corpus-root", tmp_path, cwd=tmp_path,
               env={"PYSERINI_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 2
    assert "corpus 'msmarco-passage-splade-v3'" in proc.stderr and "is missing" in proc.stderr
    assert "download https://" in proc.stderr and "--corpus-path" in proc.stderr
    proc = cli("run", CONFIGS["cranfield"], "--corpus-root", tmp_path, cwd=tmp_path)
    assert proc.returncode == 2 and "splade-pyserini encode --encoder splade-tiny" in proc.stderr


# --- export --------------------------------------------------------------------------------------------------------
PINS = ("vectors_sha256", "vectors_masked_sha256", "vectors_boundary_weights")


@pytest.fixture(scope="module")
def exported_cranfield(cranfield_pipeline, cranfield, tmp_path_factory):
    """`regression export` of the session's Cranfield vectors and index: a config pinning exactly these vectors."""
    from helpers import run_main

    out = tmp_path_factory.mktemp("exported")
    code, stdout, err = run_main("regression", "export", "--encoder", "splade-tiny", "--collection", cranfield,
                                 "--vectors", cranfield_pipeline["vectors"], "--index", cranfield_pipeline["index"],
                                 "--output", out, "--device", "cpu", "--topics-name", "Cranfield (225 queries)")
    assert code == 0, err[-3000:]
    assert stdout.strip() == str(out / CONFIGS["cranfield"].name)
    return out / CONFIGS["cranfield"].name


def test_export_writes_the_committed_config_again(exported_cranfield):
    """Everything but the pins equals the committed config (the pins are this machine's vectors)."""
    def unpinned(text):
        d = yaml.safe_load(text)
        for key in PINS:
            d["splade_pyserini"].pop(key)
        return d

    written = exported_cranfield
    assert unpinned(written.read_text()) == unpinned(CONFIGS["cranfield"].read_text())
    for f in (REGRESSIONS / regression.TOPICS_DIR).glob("*cranfield*"):
        if "boundary" not in f.name:
            assert (written.parent / regression.TOPICS_DIR / f.name).read_bytes() == f.read_bytes(), f.name
    extra = yaml.safe_load(written.read_text())["splade_pyserini"]
    boundary = vector_pins.read_boundary(written.parent / regression.TOPICS_DIR / extra["vectors_boundary"])
    assert len(boundary) == extra["vectors_boundary_weights"] > 0


def test_encode_keeps_the_boundary_entries_that_export_would_encode_again(sample_pipeline, tiny_encoder, tmp_path,
                                                                            monkeypatch):
    """`encode` keeps each shard's weights near a rounding boundary beside it (not a shard: no collection reads it);
    pinning reads them instead of encoding the corpus again, and they are what encoding again finds. A folder
    without them (a file gone, an --exact encode, an earlier version) is encoded again."""
    from helpers import SAMPLE
    from splade_pyserini.vectors import shard_files

    vectors = tmp_path / "vectors"
    shutil.copytree(sample_pipeline["vectors"], vectors)
    kept_files = sorted(p.name for p in vectors.glob("*.boundary"))
    assert kept_files == [p.name.split(".")[0] + ".boundary" for p in shard_files(vectors)]
    window = vector_pins.boundary_window()
    kept = vector_pins.recorded_boundary(vectors, window)
    assert kept  # the sample has weights near a boundary

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded again")

    with monkeypatch.context() as m:
        m.setattr(tiny_encoder, "encode_ids", no_encoding)
        assert vector_pins.boundary_entries(tiny_encoder, SAMPLE, vectors) == kept
        assert vector_pins.recorded_boundary(vectors, window / 2) is None  # another window: not what was kept
    for name in kept_files:
        (vectors / name).unlink()
    assert vector_pins.recorded_boundary(vectors, window) is None
    assert vector_pins.boundary_entries(tiny_encoder, SAMPLE, vectors) == kept
    # vectors of part of the collection (--limit) keep their entries, but pin no config of the whole collection
    from splade_pyserini.vectors import encode_corpus

    encode_corpus(tiny_encoder, SAMPLE, tmp_path / "part", limit=10, progress=False)
    assert vector_pins.recorded_boundary(tmp_path / "part", window) is not None
    with pytest.raises(SpladeError, match="holds 10 documents"):
        vector_pins.boundary_entries(tiny_encoder, SAMPLE, tmp_path / "part")


def test_export_fast_without_the_extension_is_a_clear_error(tiny_encoder, cranfield, tmp_path, monkeypatch):
    from splade_pyserini import javabuild, javaext

    monkeypatch.setattr(javabuild, "extension_jar", lambda: None)
    with pytest.raises(SpladeError, match="extension is unavailable"):
        regression.export_regression(tiny_encoder, cranfield, output=tmp_path, fast=True)
    assert not list(tmp_path.iterdir())


def test_fast_config_names_the_extension_and_reproduces(exported_sample, sample_pipeline, tmp_path):
    from splade_pyserini import javabuild, javaext

    if javabuild.extension_jar() is None:
        pytest.skip("no javac >= 21 to build the Java extension")
    config = tmp_path / exported_sample.name  # the bundled sample's exported config, with the extension's classes
    shutil.copytree(exported_sample.parent / regression.TOPICS_DIR, tmp_path / regression.TOPICS_DIR)
    text = exported_sample.read_text().replace("collection_class: JsonVectorCollection",
                                      f"collection_class: {javaext.COLLECTION}")
    text = text.replace("generator_class: DefaultLuceneDocumentGenerator", f"generator_class: {javaext.GENERATOR}")
    config.write_text(text)
    assert text.count(javaext.COLLECTION) == 1 and text.count(javaext.GENERATOR) == 1
    proc = cli("run", config, "--corpus-path", sample_pipeline["vectors"])
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.count("[OK  ]") == 8  # the vectors, 3 index statistics, 4 metrics


# --- pieces --------------------------------------------------------------------------------------------------------
def test_metric_names_map_to_trec_eval():
    m = regression.trec_eval_metric
    assert m("ndcg@10")["params"] == "-c -m ndcg_cut.10" and m("ndcg@10")["metric"] == "nDCG@10"
    assert m("map")["params"] == "-c -m map" and m("recall@1000")["metric"] == "R@1000"
    assert m("mrr@10")["params"] == "-c -M 10 -m recip_rank" and m("p@5")["params"] == "-c -m P.5"
    assert m("-c -m bpref")["metric"] == "bpref"
    with pytest.raises(SpladeError):
        m("ndcg")
    with pytest.raises(SpladeError):
        m("bleu@4")


def test_topic_lines_repeat_tokens_and_round_trip(tmp_path):
    lines = regression.topics_lines(["1", "2", "3"], [{"flow": 3, "##ing": 1}, {}, {"a": 2}])
    assert lines == ["1\tflow flow flow ##ing", "3\ta a"]
    path = tmp_path / "t.tsv.gz"
    regression.export._write_gzip_text(path, "".join(ln + "\n" for ln in lines))
    assert regression.read_pre_encoded_topics(path) == {"1": {"flow": 3, "##ing": 1}, "3": {"a": 2}}
    with pytest.raises(SpladeError):
        regression.topics_lines(["1"], [{"a b": 1}])
    assert regression.export._topic_reader(["1", "22"]) == "TsvInt"
    assert regression.export._topic_reader(["1", "007"]) == "TsvString"
    assert regression.round_half_up(0.37165, 4) == pytest.approx(0.3717)


def test_format_config_reads_back_as_the_same_data():
    d = load("vaswani")
    assert yaml.safe_load(regression.format_config(d)) == d


# --- pinned vectors: exact, re-encoded (explained), or different (fails) ------------------------------------------
def edited_copy(vectors: Path, folder: Path, edit) -> Path:
    """A copy of a vectors folder whose documents pass through ``edit(doc) -> doc or None`` (None drops it)."""
    shutil.copytree(vectors, folder)
    for shard in vector_pins_shards(folder):
        lines = []
        for line in shard.read_text().splitlines():
            doc = edit(json.loads(line))
            if doc is not None:
                lines.append(json.dumps(doc))
        shard.write_text("".join(ln + "\n" for ln in lines))
    return folder


def vector_pins_shards(folder: Path) -> list[Path]:
    from splade_pyserini.vectors import shard_files

    return shard_files(folder)


def pins_of(config: Path) -> tuple[dict, dict]:
    extra = yaml.safe_load(config.read_text())["splade_pyserini"]
    return extra, vector_pins.read_boundary(config.parent / regression.TOPICS_DIR / extra["vectors_boundary"])


def quiet_run(config: Path, vectors: Path, tmp_path: Path):
    return regression.run_regression(config, corpus_path=vectors, work_dir=tmp_path / "work", log=lambda m: None)


# the mechanisms on the bundled sample's exported config (a whole collection proves nothing more; the committed
# configs are reproduced on whole collections above)
def test_pinned_vectors_reproduce_exactly(exported_sample, sample_pipeline, tmp_path):
    report = quiet_run(exported_sample, sample_pipeline["vectors"], tmp_path)
    assert report.ok and report.vectors == "identical", report.summary()
    assert "on the pinned vectors" in report.summary()
    assert all(c.ok for c in report.checks) and len(report.checks) == 8


def test_one_boundary_weight_a_step_away_is_explained_and_passes(exported_sample, sample_pipeline, tmp_path):
    """What another CPU's float32 kernels do: a weight at a rounding boundary comes out one step away."""
    _, boundary = pins_of(exported_sample)
    (docid, term), pinned = next((k, w) for k, w in sorted(boundary.items()) if w >= 2)

    def edit(doc):
        if doc["id"] == docid:
            doc["vector"][term] = pinned + 1
        return doc

    vectors = edited_copy(sample_pipeline["vectors"], tmp_path / "v", edit)
    report = quiet_run(exported_sample, vectors, tmp_path)
    assert report.ok and report.vectors == "re-encoded", report.summary()
    (check,) = [c for c in report.checks if c.kind == "vectors"]
    assert f"1 of {len(boundary)} rounding-boundary weights differ by one step" in check.note
    assert f"{docid}/{term} {pinned}→{pinned + 1}" in check.note
    (terms,) = [c for c in report.checks if c.name == "total terms"]
    assert terms.ok and "+1 from the re-encoded boundary weights" in terms.note
    assert "on re-encoded vectors" in report.summary()


@pytest.mark.parametrize("change", ["weight+5", "boundary+2", "dropped document"])
def test_vectors_with_a_real_change_fail_naming_it(change, exported_sample, sample_pipeline, tmp_path):
    _, boundary = pins_of(exported_sample)
    first = {}

    def edit(doc):
        if not first:
            first["id"] = doc["id"]
            if change == "dropped document":
                return None
            if change == "weight+5":
                term = next(t for t in sorted(doc["vector"]) if (doc["id"], t) not in boundary)
            else:
                term = next((t for (d, t) in boundary if d == doc["id"]), None) or next(iter(doc["vector"]))
                if (doc["id"], term) not in boundary:
                    pytest.skip("the first document has no boundary weight")
            doc["vector"][term] = int(doc["vector"].get(term, 0)) + (5 if change == "weight+5" else 2)
        return doc

    vectors = edited_copy(sample_pipeline["vectors"], tmp_path / "v", edit)
    report = quiet_run(exported_sample, vectors, tmp_path)
    assert not report.ok and report.vectors == "different"
    assert "not the config's vectors" in report.summary() or "not float noise" in report.summary()
    assert "vectors:" in report.summary()
    proc = cli("run", exported_sample, "--corpus-path", vectors)
    assert proc.returncode == 1 and "FAILED" in proc.stderr


@pytest.fixture(scope="module")
def exported_sample(sample_pipeline, tiny_encoder, tmp_path_factory):
    """`regression export` of the bundled 48-document sample (its session vectors and index)."""
    out = tmp_path_factory.mktemp("exported-sample")
    return regression.export_regression(tiny_encoder, sample_pipeline["collection"], output=out,
                                        vectors=sample_pipeline["vectors"], index=sample_pipeline["index"],
                                        work_dir=out / "work", log=lambda m: None)


@pytest.mark.slow  # encodes in a Python subprocess
@pytest.mark.parametrize("capability", ["default"])
def test_vectors_encoded_under_another_cpu_kernel_pass_with_an_explanation(capability, exported_sample,
                                                                           sample_pipeline, tmp_path):
    """The sample encoded again in a subprocess whose torch uses other CPU kernels (as on another machine), without
    --exact: `regression run` passes, saying whether the vectors are the pinned ones or which boundary weights moved
    (test_one_boundary_weight_a_step_away_is_explained_and_passes makes one move on purpose)."""
    vectors = tmp_path / "vectors"
    proc = run_cli("encode", "--encoder", "splade-tiny", "--corpus", sample_pipeline["collection"], "--output",
                   vectors, "--device", "cpu", cwd=REPO, env={"ATEN_CPU_CAPABILITY": capability}, timeout=None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = quiet_run(exported_sample, vectors, tmp_path)
    assert report.ok, report.summary()
    assert report.vectors in ("identical", "re-encoded")
    (check,) = [c for c in report.checks if c.kind == "vectors"]
    print(f"ATEN_CPU_CAPABILITY={capability}: {check.note}")


def test_stock_index_collection_reads_an_encode_output_cleanly(sample_pipeline, tmp_path):
    """Anserini's own IndexCollection on the folder `encode` wrote (record and owner files included): no exception
    logged. Its JsonVectorCollection parses every non-empty file under the folder, so the records are lines it reads
    as empty documents (fileio.write_record)."""
    from splade_pyserini.anserini import java_command

    index = tmp_path / "index"
    args = ["-collection", "JsonVectorCollection", "-input", str(sample_pipeline["vectors"]), "-generator",
            "DefaultLuceneDocumentGenerator", "-index", str(index), "-threads", "2", "-impact", "-pretokenized"]
    proc = subprocess.run(java_command("io.anserini.index.IndexCollection", args), capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "Exception" not in log and "ERROR" not in log, log[-3000:]
    from splade_pyserini.vectors import read_encoding_meta

    assert regression.index_stats(index)["documents"] == read_encoding_meta(sample_pipeline["vectors"])["documents"] > 0
