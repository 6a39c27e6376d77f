"""Input validation: every malformed corpus, topic, qrels or run file is refused with one line naming file and line.

A test per failure class (encoding, ids, repeated ids, empty files, malformed lines), then a property-based test
that injects one defect at a random line of a random valid file and runs the command line in-process.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import SAMPLE, run_main
from splade_pyserini.corpus import check_corpus, read_corpus
from splade_pyserini.errors import SpladeError
from splade_pyserini.inputs import MAX_ID_BYTES, SeenIds
from splade_pyserini.runs import read_qrels, read_run
from splade_pyserini.topics import read_topics


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def refused(read, path: Path, line: int | None, phrase: str) -> str:
    with pytest.raises(SpladeError) as e:
        result = read(path)
        if hasattr(result, "__next__"):
            list(result)
    msg = str(e.value)
    assert "\n" not in msg
    assert (f"{path}:{line}:" in msg) if line else str(path) in msg, msg
    assert phrase in msg, msg
    return msg


def jdoc(doc_id, text="some text") -> str:
    return json.dumps({"_id": doc_id, "title": "", "text": text}, ensure_ascii=False)


# --- encodings ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reader, good, bad", [
    (check_corpus, jdoc("a") + "\n", jdoc("b", "caf\udce9").encode("utf-8", "surrogateescape")),
    (check_corpus, "a\tfine\n", b"b\tcaf\xe9\n"),
    (read_topics, "1\tfine\n", b"2\tcaf\xe9\n"),
    (read_qrels, "1 0 a 1\n", b"1 0 caf\xe9 1\n"),
    (read_run, "1 Q0 a 1 2.0 t\n", b"1 Q0 caf\xe9 2 1.0 t\n"),
], ids=["corpus-jsonl", "corpus-tsv", "topics", "qrels", "run"])
def test_a_file_that_is_not_utf8_is_refused_at_its_line(tmp_path, reader, good, bad):
    suffix = ".jsonl" if bad.startswith(b"{") else ".tsv"
    path = write(tmp_path / f"f{suffix}", good.encode() + bad + b"\n")
    refused(reader, path, 2, "not UTF-8")


def test_a_utf8_bom_is_ignored_and_gzip_is_read(tmp_path):
    import gzip

    assert read_topics(write(tmp_path / "q.tsv", b"\xef\xbb\xbf1\tquery one\n")) == {"1": "query one"}
    folder = tmp_path / "beir"
    folder.mkdir()
    with gzip.open(folder / "corpus.jsonl.gz", "wt") as f:
        f.write(jdoc("a") + "\n" + jdoc("b") + "\n")
    assert [d.id for d in read_corpus(folder)] == ["a", "b"]
    write(folder / "corpus.jsonl.gz", b"not gzip")
    refused(check_corpus, folder, None, "not a readable gzip file")


def test_a_lone_surrogate_escape_in_text_is_refused(tmp_path):
    path = write(tmp_path / "c.jsonl", jdoc("a") + "\n" + '{"_id": "b", "text": "x \\ud800 y"}\n')
    refused(check_corpus, path, 2, "lone UTF-16 surrogate")


# --- ids -------------------------------------------------------------------------------------------------------------
BAD_IDS = ["a b", "a\tb", "a\nb", "", "a\x00b", "a\u2028b", "a\u3000b", "a\x85b", "a\x7fb", "x" * (MAX_ID_BYTES + 1)]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_bad_ids_are_refused_in_json_corpus_and_topics(tmp_path, bad):
    corpus = write(tmp_path / "c.jsonl", jdoc("ok") + "\n" + jdoc(bad) + "\n")
    msg = refused(check_corpus, corpus, 2, "document id")
    assert "empty" in msg or "longer than" in msg or "whitespace or control" in msg
    topics = write(tmp_path / "q.jsonl", json.dumps({"_id": "1", "text": "q"}) + "\n"
                   + json.dumps({"_id": bad, "text": "q"}) + "\n")
    refused(read_topics, topics, 2, "query id")


@pytest.mark.parametrize("value", [True, 1.5, None, [1], {"a": 1}])
def test_ids_that_are_not_strings_are_refused(tmp_path, value):
    path = write(tmp_path / "c.jsonl", jdoc("ok") + "\n" + json.dumps({"_id": value, "text": "x"}) + "\n")
    refused(check_corpus, path, 2, "no id" if value is None else "must be a string")


def test_integer_ids_are_strings(tmp_path):
    path = write(tmp_path / "c.jsonl", json.dumps({"id": 7, "contents": "x"}) + "\n")
    assert [d.id for d in read_corpus(path)] == ["7"]


@pytest.mark.parametrize("reader, text", [
    (check_corpus, "ok\ttext\n\ttext without id\n"),
    (check_corpus, "ok\ttext\nsp ace\ttext\n"),
    (read_topics, "1\tquery\n1\x0b\tquery\n"),
    (read_qrels, "1 0 ok 1\n1 0 a\x00b 1\n"),
    (read_run, "1 Q0 ok 1 2.0 t\n1 Q0 a\x7fb 2 1.0 t\n"),
], ids=["corpus-empty-id", "corpus-space", "topics-vtab", "qrels-nul", "run-del"])
def test_bad_ids_are_refused_in_tab_and_space_separated_files(tmp_path, reader, text):
    refused(reader, write(tmp_path / "f.tsv", text), 2, "id")


# --- repeated ids ----------------------------------------------------------------------------------------------------
def test_a_repeated_document_id_is_refused_naming_both_lines(tmp_path):
    path = write(tmp_path / "c.jsonl", "\n".join(jdoc(i) for i in ["a", "b", "c", "b"]) + "\n")
    assert refused(check_corpus, path, 4, "document id 'b' repeats").endswith(f"repeats {path}:2; ids must be unique: "
                                                                              "remove or rename one of them.")


def test_a_repeat_far_apart_and_across_shard_files_is_found(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    write(folder / "part-0.jsonl", "\n".join(jdoc(f"d{i}") for i in range(9000)) + "\n")
    write(folder / "part-1.jsonl", jdoc("new") + "\n" + jdoc("d4321") + "\n")
    msg = refused(check_corpus, folder, None, "document id 'd4321' repeats")
    assert f"{folder / 'part-1.jsonl'}:2:" in msg and f"{folder / 'part-0.jsonl'}:4322" in msg


def test_a_hash_collision_is_not_taken_for_a_repeat(tmp_path, monkeypatch):
    """Repeats are found by 64-bit hashes; a candidate is confirmed against the ids before it is reported."""
    path = write(tmp_path / "c.jsonl", "\n".join(jdoc(f"d{i}") for i in range(5000)) + "\n")
    monkeypatch.setattr(SeenIds, "repeats", lambda self, ids: list(range(len(ids))))  # every id "collides"
    assert [d.id for d in read_corpus(path)] == [f"d{i}" for i in range(5000)]


def test_seen_ids_keep_eight_bytes_per_id_and_find_every_repeat():
    import random

    rng = random.Random(7)
    seen, met, found, expected = SeenIds(), set(), [], []
    for batch_no in range(30):
        batch = [f"id{rng.randrange(200_000)}" for _ in range(4096)]
        for i, x in enumerate(batch):
            if x in met:
                expected.append((batch_no, i))
            met.add(x)
        found += [(batch_no, i) for i in seen.repeats(batch)]
    assert set(expected) <= set(found) and len(found) - len(expected) < 3  # at most a few hash collisions
    assert sum(run.nbytes for run in seen._runs) == 8 * 30 * 4096
    assert len(seen._runs) <= 5  # merged like a binary counter: log2(30) runs at most


@pytest.mark.parametrize("fmt", ["jsonl", "tsv", "trec"])
def test_a_repeated_query_id_is_refused(tmp_path, fmt):
    text = {"jsonl": "\n".join(json.dumps({"_id": q, "text": "words"}) for q in ["1", "2", "1"]) + "\n",
            "tsv": "1\tone\n2\ttwo\n1\tagain\n",
            "trec": "<top>\n<num> 1\n<title> one\n</top>\n<top>\n<num> 2\n<title> two\n</top>\n"
                    "<top>\n<num> 1\n<title> again\n</top>\n"}[fmt]
    line = 9 if fmt == "trec" else 3
    assert refused(read_topics, write(tmp_path / f"q.{fmt}", text), line, "query id '1' repeats").count(":1;") == 1


def test_a_run_listing_a_document_twice_for_a_query_is_refused(tmp_path):
    path = write(tmp_path / "run", "1 Q0 a 1 3 t\n1 Q0 b 2 2 t\n2 Q0 a 1 3 t\n1 Q0 a 3 1 t\n")
    msg = refused(read_run, path, 4, "hit of query 1 for document 'a' repeats")
    assert f"{path}:1;" in msg and "trec_eval refuses" in msg


def test_a_judgment_given_twice_is_refused(tmp_path):
    path = write(tmp_path / "qrels.tsv", "query-id\tcorpus-id\tscore\n1\ta\t1\n1\tb\t0\n1\ta\t2\n")
    assert f"{path}:2;" in refused(read_qrels, path, 4, "judgment of query 1 for document 'a' repeats")


# --- empty files and malformed lines -------------------------------------------------------------------------------
@pytest.mark.parametrize("reader, phrase", [(check_corpus, "holds no documents"), (read_topics, "hold no queries"),
                                            (read_qrels, "hold no judgments"), (read_run, "holds no results")])
@pytest.mark.parametrize("content", ["", "\n\n  \n"], ids=["empty", "blank"])
def test_empty_files_are_refused(tmp_path, reader, phrase, content):
    refused(reader, write(tmp_path / "f.jsonl", content), None, phrase)


@pytest.mark.parametrize("reader, text, phrase", [
    (check_corpus, jdoc("a") + "\n" + '{"_id": "b", "text": "x"\n', "malformed JSON"),
    (check_corpus, jdoc("a") + "\n" + "[" * 100_000 + "\n", "nested too deeply"),
    (check_corpus, jdoc("a") + "\n" + '["b", "x"]\n', "expected a JSON object"),
    (check_corpus, jdoc("a") + "\n" + '{"_id": "b", "title": 3, "text": "x"}\n', "title of document b must be a string"),
    (check_corpus, jdoc("a") + "\n" + '{"_id": "b"}\n', "has no text"),
    (read_topics, "1\tone\n2 two\n", "found no tab"),
    (read_topics, '{"_id": "1", "text": "q"}\n{"_id": "2", "text": 5}\n', "must be a string"),
    (read_topics, "1\tone\n2\t  \n", "query 2 has empty text"),
    (read_qrels, "1 0 a 1\n1 0 b\n", "found 3 fields where the lines above have 4"),
    (read_qrels, "1 0 a 1\n1 0 b high\n", "relevance grade 'high' is not a finite number"),
    (read_qrels, "1 0 a 1\n1 0 b inf\n", "not a finite number"),
    (read_qrels, "1 0 a 1\n1 0 b 1.5\n", "is not an integer"),
    (read_run, "1 Q0 a 1 2 t\n1 Q0 b 2 t\n", "expected a TREC run line"),
    (read_run, "1 Q0 a 1 2 t\n1 Q0 b 2 nan t\n", "score 'nan' is not a finite number"),
    (read_run, "1 Q0 a 1 2 t\n1 Q0 b 2 1e999 t\n", "not a finite number"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_malformed_lines_are_refused_at_their_line(tmp_path, reader, text, phrase):
    suffix = ".jsonl" if text.startswith(("{", '{"')) else ".tsv"
    refused(reader, write(tmp_path / f"f{suffix}", text), 2, phrase)


def test_a_huge_line_is_read(tmp_path):
    text = "word " * 400_000
    path = write(tmp_path / "c.jsonl", jdoc("a", text) + "\n" + jdoc("b") + "\n")
    assert [len(d.text) for d in read_corpus(path)] == [len(text), len("some text")]


# --- the property: any one defect, anywhere, through the command line ----------------------------------------------
ID = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1,
             max_size=10).filter(lambda s: not any(c.isspace() for c in s)).map(lambda s: "x" + s)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\t\n\r"),
               max_size=30).map(lambda s: "t " + s)
BAD_CHARS = {"json": [" ", "\t", "\n", "\x00", "\u2028", "\x85", "\u3000"], "tsv": [" ", "\x0b", "\x00", "\u3000"],
             "fields": ["\x00", "\x07", "\x7f", "\x9f"]}
KINDS = {  # kind: (characters that break an id there, command reading it)
    "corpus.jsonl": ("json", "encode"), "corpus.tsv": ("tsv", "encode"), "topics.jsonl": ("json", "search"),
    "topics.tsv": ("tsv", "search"), "qrels": ("fields", "evaluate-qrels"), "run": ("fields", "evaluate-run"),
}


def _record(kind: str, doc_id: str, text: str, n: int) -> str:
    if kind.endswith(".jsonl"):
        return json.dumps({"_id": doc_id, "text": text}, ensure_ascii=False) if kind.startswith("topics") else jdoc(doc_id, text)
    if kind.endswith(".tsv"):
        return f"{doc_id}\t{text}"
    if kind == "qrels":
        return f"q{n % 2} 0 {doc_id} {n % 3}"
    return f"q{n % 2} Q0 {doc_id} {n + 1} {100 - n}.5 tag"


def _defective(kind: str, defect: str, records: list[tuple[str, str]], k: int, char: str) -> bytes:
    doc_id, text = records[k]
    if defect == "encoding":
        return _record(kind, doc_id + "\udcff", text, k).encode("utf-8", "surrogateescape")  # a raw 0xff byte
    if defect == "bad id":
        return _record(kind, doc_id[:1] + char + doc_id[1:] if char else "", text, k).encode()
    if defect == "repeat":
        j = next(j for j in range(k) if kind in ("corpus.jsonl", "corpus.tsv", "topics.jsonl", "topics.tsv")
                 or j % 2 == k % 2)  # qrels and runs: the same query
        return _record(kind, records[j][0], text, k).encode()
    line = _record(kind, doc_id, text, k)  # malformed
    return (line[:-1] if kind.endswith(".jsonl") else line.replace("\t", " ") if kind.endswith(".tsv")
            else line.rsplit(" ", 1)[0]).encode()


@st.composite
def defective_files(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    ids = draw(st.lists(ID, min_size=3, max_size=8, unique=True))
    records = [(i, draw(TEXT)) for i in ids]
    defect = draw(st.sampled_from(["encoding", "bad id", "repeat", "malformed"]))
    k = draw(st.integers(2 if defect == "repeat" else 0, len(records) - 1))
    char = draw(st.sampled_from(BAD_CHARS[KINDS[kind][0]] + ([""] if kind != "qrels" and kind != "run" else [])))
    blank_lines = draw(st.booleans())
    huge = draw(st.booleans()) and k > 0 and not kind.startswith(("qrels", "run"))
    lines: list[bytes] = []
    for n, (doc_id, text) in enumerate(records):
        if n == k:
            line_no = len(lines) + 1
            lines.append(_defective(kind, defect, records, k, char))
        else:
            lines.append(_record(kind, doc_id, text + ("y" * 300_000 if huge and n == 0 else ""), n).encode())
        if blank_lines:
            lines.append(b"")
    return kind, defect, b"\n".join(lines) + b"\n", line_no


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(defective_files())
def test_any_defect_is_refused_in_one_line_naming_file_and_line_and_nothing_is_written(case):
    kind, defect, data, line_no = case
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = write(tmp / kind.replace("qrels", "qrels.txt").replace("run", "run.txt"), data)
        good_qrels = write(tmp / "good-qrels", "q0 0 xa 1\n")
        old_run = write(tmp / "old-run.txt", "q0 Q0 xa 1 1.0 earlier\n")
        before = sorted(p.name for p in tmp.iterdir())
        command = KINDS[kind][1]
        if command == "encode":
            args = ["encode", "--encoder", "splade-tiny", "--corpus", path, "--output", tmp / "vectors"]
        elif command == "search":
            args = ["search", "--index", tmp / "index", "--encoder", "splade-tiny", "--topics", path,
                    "--output", old_run]
        elif command == "evaluate-qrels":
            args = ["evaluate", "--qrels", path, "--run", old_run]
        else:
            args = ["evaluate", "--qrels", good_qrels, "--run", path]
        code, out, err = run_main(*args)
        assert code == 2, (kind, defect, err)
        assert err.count("\n") == 1 and err.startswith("error: "), err
        assert f"{path}:{line_no}:" in err, (kind, defect, line_no, err)
        assert out == ""  # no partial table
        assert sorted(p.name for p in tmp.iterdir()) == before  # no output folder, no temporary file
        assert old_run.read_text() == "q0 Q0 xa 1 1.0 earlier\n"  # the earlier run is untouched


def test_the_bundled_sample_passes_every_check():
    check_corpus(SAMPLE)
    assert len(read_topics(SAMPLE)) == 8 and len(read_qrels(SAMPLE)) == 8
