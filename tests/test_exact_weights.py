"""Integer weights equal to the float64 formula's on any CPU kernel, thread count and number of concurrent callers.

The reference is an independent float64 BertForMaskedLM (tests/test_encoder.py's ``reference_model``): each text
alone, ``round(max over positions of log1p(relu(logits)) × scale)``, halves away from zero. Other machines are
simulated by subprocesses with other kernels: torch's ``ATEN_CPU_CAPABILITY``, OpenBLAS's ``OPENBLAS_CORETYPE``
and numba's ``NUMBA_CPU_NAME`` (splade_pyserini.exact.VARIANTS; AVX-512 ones only on a CPU that has it).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import run_python
from test_encoder import reference_model

HERE = Path(__file__).resolve().parent
DOCS = 60  # Cranfield documents encoded with exact=True under two kernel variants (13,433 non-zero weights; 52 documents hold one near a rounding boundary)


def _queries(collection) -> list[str]:
    return [json.loads(line)["text"] for line in open(collection / "queries.jsonl")]


def _documents(collection, n=DOCS) -> list[str]:
    from splade_pyserini.corpus import read_corpus

    return [d.text for _, d in zip(range(n), read_corpus(collection))]


def _as_lists(vectors: list[dict]) -> list[list]:
    return [sorted(v.items()) for v in vectors]


def _reference(model, tokenizer, texts, max_length, scale) -> list[dict[str, int]]:
    """float64 integer weights of each text alone."""
    from splade_pyserini.encoder import quantize

    vocab = {i: t for t, i in tokenizer.get_vocab().items()}
    out = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")["input_ids"]
            w = torch.log1p(torch.relu(model(input_ids=ids).logits[0].amax(dim=0))).numpy()  # monotone: max first
            q = quantize(w, scale)
            out.append({vocab[int(j)]: int(q[j]) for j in np.flatnonzero(q)})
    return out


@pytest.fixture(scope="module")
def collections(cranfield, vaswani):
    return {"cranfield": cranfield, "vaswani": vaswani}


@pytest.fixture(scope="module")
def float64_model(tiny_model):
    return reference_model(tiny_model)


@pytest.fixture(scope="module")
def reference(float64_model, tiny_encoder, collections):
    card = tiny_encoder.card
    return {name: _reference(float64_model, tiny_encoder.tokenizer, _queries(c), card.query_max_length, card.scale)
            for name, c in collections.items()}


@pytest.fixture(scope="module")
def doc_reference(float64_model, tiny_encoder, cranfield):
    card = tiny_encoder.card
    return _reference(float64_model, tiny_encoder.tokenizer, _documents(cranfield), card.doc_max_length, card.scale)


def _concurrently(fn, callers: int) -> list:
    """``fn()`` in ``callers`` threads started together; every result."""
    results, errors = [None] * callers, []
    barrier = threading.Barrier(callers)

    def run(i):
        try:
            barrier.wait()
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 (re-raised below)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("callers", [4])  # each of the four results is checked: one caller adds nothing
def test_query_weights_are_the_float64_formulas_under_concurrent_callers(callers, tiny_encoder, collections,
                                                                          reference):
    for name, collection in collections.items():
        texts = _queries(collection)
        for got in _concurrently(lambda: tiny_encoder.quantized_queries(texts), callers):
            assert _as_lists(got) == _as_lists(reference[name]), name


def test_query_weights_one_query_at_a_time_are_the_float64_formulas(tiny_encoder, collections, reference):
    """A query alone takes the compiled screen (a batch's positions go through the BLAS): the same weights."""
    from splade_pyserini.query_encoder import ScreenedProjection

    texts = _queries(collections["cranfield"])
    assert len(tiny_encoder.tokenize(texts[:1], tiny_encoder.card.query_max_length)[0]) <= ScreenedProjection.SMALL_ROWS
    for name, collection in collections.items():
        got = [tiny_encoder.quantized_queries([t])[0] for t in _queries(collection)]
        assert _as_lists(got) == _as_lists(reference[name]), name


@pytest.mark.parametrize("callers", [4])  # each of the four results is checked: one caller adds nothing
def test_searcher_encodes_and_searches_the_same_under_concurrent_callers(callers, tiny_encoder, cranfield_pipeline,
                                                                         reference):
    from splade_pyserini.search import SpladeSearcher

    texts = _queries(cranfield_pipeline["collection"])
    qids = [str(i) for i in range(len(texts))]
    with SpladeSearcher(cranfield_pipeline["index"], tiny_encoder) as searcher:
        held = set(searcher._batch.terms()) if searcher._batch is not None else None
        expected = [{t: w for t, w in r.items() if held is None or t in held} for r in reference["cranfield"]]
        serial = searcher.batch_search(texts, qids, k=100, threads=2)
        for got in _concurrently(lambda: searcher.encode_for_search(texts), callers):
            assert _as_lists(got) == _as_lists(expected)
        for got in _concurrently(lambda: searcher.batch_search(texts, qids, k=100, threads=2), callers):
            assert got == serial


def test_weights_near_a_rounding_boundary_are_recomputed_in_float64(tiny_encoder, vaswani):
    """The mechanism itself: the float32 path leaves some weights within DELTA of a boundary (else the test
    proves nothing), and exactly those texts are recomputed; the float64 values keep their rounding in float32."""
    from splade_pyserini.encoder import quantize
    from splade_pyserini.exact import DELTA, float32_rounding_as, near_boundary, rows_near_boundary

    scale = tiny_encoder.card.scale
    texts = _queries(vaswani)
    fast = tiny_encoder.encode(texts, "query", exact=False)
    flagged = rows_near_boundary(fast.offsets, fast.weights, scale)
    assert 0 < len(flagged) < len(texts)
    assert all(near_boundary(fast.row(i)[1], scale).any() for i in flagged)
    exact = tiny_encoder.encode(texts, "query")
    assert exact.weights.dtype == np.float32
    unflagged = np.setdiff1d(np.arange(len(texts)), flagged)
    for i in unflagged:
        assert exact.row(i)[0].tolist() == fast.row(i)[0].tolist()
        assert quantize(exact.row(i)[1], scale).tolist() == quantize(fast.row(i)[1], scale).tolist()
    # float64 values just either side of every boundary: a plain float32 cast moves half of them across it
    boundaries = (np.arange(300) + 0.5) / scale
    w64 = np.concatenate([boundaries * (1 + 1e-12), boundaries * (1 - 1e-12)])
    assert (quantize(w64.astype(np.float32), scale) != quantize(w64, scale)).sum() >= 100
    assert quantize(float32_rounding_as(w64, scale), scale).tolist() == quantize(w64, scale).tolist()
    assert 0 < DELTA < 0.5


def _variant_run(env: dict, out: Path, cranfield: Path, vaswani: Path, tiny_model: Path) -> dict:
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import test_exact_weights as t; "
            f"t._child({str(out)!r}, {str(cranfield)!r}, {str(vaswani)!r}, {str(tiny_model)!r})")
    proc = run_python(code, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def _child(out, cranfield, vaswani, tiny_model):
    """In a subprocess under some kernel variant: every query's integer weights, and exact document vectors."""
    import torch as _torch

    from splade_pyserini import load_encoder

    encoder = load_encoder(tiny_model, device="cpu")
    result = {name: encoder.quantized_queries(_queries(Path(c))) for name, c in
              (("cranfield", cranfield), ("vaswani", vaswani))}
    # each query alone too: a query or two take the compiled screen (query_kernels.screen_mask), a batch the BLAS
    result.update({f"{name}-alone": [encoder.quantized_queries([t])[0] for t in _queries(Path(c))] for name, c in
                   (("cranfield", cranfield), ("vaswani", vaswani))})
    if os.environ.get("WITH_DOCS"):
        batch = encoder.encode(_documents(Path(cranfield)), "document", exact=True)
        from splade_pyserini.encoder import quantize

        q = quantize(batch.weights, encoder.card.scale)
        result["cranfield-docs"] = [{encoder.vocab[t]: int(w) for t, w in zip(*[a.tolist() for a in (
            batch.terms[a:b], q[a:b])]) if w} for a, b in zip(batch.offsets[:-1], batch.offsets[1:])]
    result["capability"] = _torch.backends.cpu.get_cpu_capability()
    Path(out).write_text(json.dumps(result))


# Simulated machines, several kernel changes a process (torch's ATen kernels and numpy's OpenBLAS are separate
# libraries, so one process can change both): every runnable variant of splade_pyserini.exact.VARIANTS is covered,
# in half the subprocesses. Documents go through torch (ATen); they are encoded under two ATen kernels.
MACHINES = {
    "aten-default+openblas-haswell": ("aten-default", "openblas-haswell"),
    "aten-avx2+openblas-zen+2-threads+docs": ("aten-avx2", "openblas-zen"),
    "aten-avx512+openblas-skylakex": ("aten-avx512", "openblas-skylakex"),
    "generic-1-thread+docs": ("generic-1-thread", "openblas-prescott", "aten-default"),
}


def _machines() -> dict[str, dict[str, str]]:
    from splade_pyserini.exact import VARIANTS, runnable_variants

    runnable = runnable_variants()
    covered = {v for variants in MACHINES.values() for v in variants}
    assert covered | {"native"} >= set(VARIANTS), "a kernel variant is in no simulated machine"
    machines = {}
    for name, variants in MACHINES.items():
        if all(v in runnable for v in variants):
            env: dict[str, str] = {}
            for v in variants:
                for key, value in VARIANTS[v].items():
                    assert env.get(key, value) == value, (name, key)
                    env[key] = value
            if "+2-threads" in name:  # several compute threads (make test's workers run one each)
                env.update({var: "2" for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
            machines[name] = env
    return machines


@pytest.mark.slow  # a Python subprocess per simulated machine
@pytest.mark.parametrize("machine", list(_machines()))
def test_query_weights_are_identical_under_other_cpu_kernels(machine, tmp_path, cranfield, vaswani, tiny_model,
                                                             reference, request):
    env = dict(_machines()[machine])
    docs = machine.endswith("+docs")  # exact documents under two ATen kernels
    if docs:
        env["WITH_DOCS"] = "1"
    got = _variant_run(env, tmp_path / "weights.json", cranfield, vaswani, tiny_model)
    if "ATEN_CPU_CAPABILITY" in env:
        assert got["capability"].lower() == env["ATEN_CPU_CAPABILITY"].lower() or env["ATEN_CPU_CAPABILITY"] == "avx512"
    for name in ("cranfield", "vaswani"):
        assert _as_lists(got[name]) == _as_lists(reference[name]), (machine, name)
        assert _as_lists(got[f"{name}-alone"]) == _as_lists(reference[name]), (machine, name, "one at a time")
    if docs:
        assert _as_lists(got["cranfield-docs"]) == _as_lists(request.getfixturevalue("doc_reference")), machine
