"""Running a regression config and reporting on it: index (or take ``--index``), check the pinned vectors and the
index statistics, search, evaluate and compare every metric exactly (:func:`run_regression`), or hand the config to
Anserini's own runner (:func:`run_with_anserini`); what was checked is a :class:`Report` of :class:`Check` lines.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpladeError
from ..fileio import work_folder
from .config import CONFIG_DIR_IN_JAR, TOPICS_DIR, Config, load_config, round_half_up
from .java_steps import evaluate_metric, extra_classpath, index_corpus, index_stats, run_file_name, search
from .locate import resolve_corpus, resolve_data_file

logger = logging.getLogger(__name__)

RUNNER_CLASS = "io.anserini.reproduce.ReproduceFromDocumentCollection"


@dataclass
class Check:
    """One verified quantity: an index statistic or a metric of one model on one topic set."""

    kind: str  # "vectors", "stat" or "metric"
    name: str
    expected: float | int | str | None
    actual: float | int | str | None
    ok: bool
    topics: str | None = None
    model: str | None = None
    precision: int | None = None
    note: str = ""

    def describe(self) -> str:
        if self.kind == "vectors":
            return f"vectors: {self.note}"
        if self.kind == "stat":
            return f"index stat {self.name!r}: expected {self.expected}, actual {self.actual}" + (
                f" ({self.note})" if self.note else "")
        p = self.precision or 4
        exp = "none" if self.expected is None else f"{self.expected:.{p}f}"
        act = "none" if self.actual is None else f"{self.actual:.{p}f}"
        delta = ""
        if self.expected is not None and self.actual is not None:
            delta = f" (delta {self.actual - self.expected:+.{p}f})"
        return f"{self.name} on topics {self.topics!r}, model {self.model}: expected {exp}, actual {act}{delta}"

    def line(self) -> str:
        tag = "OK  " if self.ok else ("----" if self.expected is None else "FAIL")
        return f"[{tag}] {self.describe()}"


@dataclass
class Report:
    config: str
    checks: list[Check] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    runner: str = "splade-pyserini"

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.expected is not None]

    @property
    def ok(self) -> bool:
        return not self.failures and any(c.kind == "metric" and c.ok for c in self.checks)

    @property
    def vectors(self) -> str | None:
        """``identical``, ``re-encoded`` or ``different`` when the vectors were checked against the config's pins."""
        return next((str(c.actual) for c in self.checks if c.kind == "vectors" and c.expected is not None), None)

    def summary(self) -> str:
        compared = [c for c in self.checks if c.expected is not None]
        if self.ok:
            how = {"identical": " on the pinned vectors", "re-encoded": " on re-encoded vectors (differences "
                   "explained above, metrics equal at the config's precision)"}.get(self.vectors or "", "")
            return (f"regression {self.config}: all {len(compared)} checks reproduced{how} ({self.seconds:.0f}s, "
                    f"{self.runner})")
        if not self.failures:
            return f"regression {self.config}: nothing was compared (no expected results)"
        lines = [f"regression {self.config} FAILED: {len(self.failures)} of {len(compared)} checks differ"]
        lines += [f"  {c.describe()}" for c in self.failures]
        return "\n".join(lines)


def check_pinned_vectors(cfg: Config, corpus: Path, topics_dir=None):
    """The corpus folder checked against the vectors the config pins (see :mod:`.vector_pins`), or None when the
    config pins none (configs of other tools, or exported from an index alone)."""
    from .. import vector_pins

    extra = cfg.data.get("splade_pyserini") or {}
    if not extra.get("vectors_sha256"):
        return None
    if not Path(corpus).is_dir():
        raise SpladeError(f"the corpus {corpus} of regression {cfg.name} is not a vectors folder.")
    boundary = vector_pins.read_boundary(resolve_data_file(cfg, str(extra["vectors_boundary"]), "boundary list",
                                                           topics_dir))
    return vector_pins.check_vectors(corpus, str(extra["vectors_sha256"]), str(extra["vectors_masked_sha256"]),
                                     boundary)


def run_regression(config: str | os.PathLike | Config, corpus_path=None, corpus_root=None, topics_dir=None,
                   index=None, work_dir=None, index_threads: int | None = None, keep: bool = False,
                   log=None) -> Report:
    """Index, verify, search and evaluate a config with the fat jar; returns a :class:`Report` (never raises on a
    mismatch; raises :class:`SpladeError` for a missing corpus, topics, Java, …)."""
    cfg = config if isinstance(config, Config) else load_config(config)
    d = cfg.data
    log = log or logger.info
    start = time.perf_counter()
    corpus = None if index else resolve_corpus(cfg, corpus_path, corpus_root)
    topic_files = [(resolve_data_file(cfg, str(t["path"]), "topics", topics_dir),
                    resolve_data_file(cfg, str(t.get("qrel") or t.get("qrels")), "qrels", topics_dir))
                   for t in d["topics"]]
    from ..onnx_export import java_env

    java_env(d, cfg.folder)  # fail early when its ONNX query encoder is missing
    if not index:
        extra_classpath(d)  # fail early when the extension is needed but unavailable
    own_work = work_dir is None
    work = work_folder(work_dir, "regression work folder", prefix="splade-regression-", what="--work-dir")
    report = Report(config=cfg.name)
    pinned = None if index else check_pinned_vectors(cfg, corpus, topics_dir)
    if pinned is not None:
        report.checks.append(Check("vectors", "vectors", "identical", pinned.state, pinned.state != "different",
                                   note=pinned.message))
        if pinned.state == "different":  # never index other vectors
            if own_work and not keep:
                shutil.rmtree(work, ignore_errors=True)
            report.seconds = time.perf_counter() - start
            return report
    elif (d.get("splade_pyserini") or {}).get("vectors_sha256"):
        report.checks.append(Check("vectors", "vectors", None, None, False,
                                   note="not checked against the config's pins (an index was given)"))
    try:
        if index:
            index_dir = Path(index)
            if not index_dir.is_dir():
                raise SpladeError(f"--index {index_dir} does not exist.")
            log(f"regression {cfg.name}: using the index {index_dir}")
        else:
            index_dir = work / str(d["index_path"])
            log(f"regression {cfg.name}: indexing {corpus} with {d['collection_class']} → {index_dir}")
            index_corpus(d, corpus, index_dir, index_threads)
        stats = index_stats(index_dir)
        for key, expected in (d.get("index_stats") or {}).items():
            actual = stats.get(str(key))
            note = ""
            if pinned is not None and pinned.state == "re-encoded" and str(key) == "total terms":
                # each weight is a term frequency: the boundary weights that moved move the total by their sum
                note = f"pinned {int(expected)}, {pinned.terms_delta:+d} from the re-encoded boundary weights"
                expected = int(expected) + pinned.terms_delta
            report.checks.append(Check("stat", str(key), int(expected), actual,
                                       actual is not None and int(actual) == int(expected), note=note))
        runs_dir = work / "runs"
        runs_dir.mkdir(exist_ok=True)
        for model in d["models"]:
            for i, (topic, (topics_path, qrels_path)) in enumerate(zip(d["topics"], topic_files)):
                run = runs_dir / run_file_name(d, model, topic)
                log(f"regression {cfg.name}: searching topics {topic['id']} with model {model['name']}")
                search(d, topic, model, index_dir, topics_path, run, env=java_env(d, cfg.folder))
                report.runs[f"{model['name']}/{topic['id']}"] = str(run)
                results = model.get("results") or {}
                for metric in d["metrics"]:
                    name = str(metric["metric"])
                    precision = int(metric["metric_precision"])
                    actual = round_half_up(evaluate_metric(metric, qrels_path, run), precision)
                    values = results.get(name)
                    expected = None
                    if values is not None and i < len(values) and values[i] is not None:
                        expected = round_half_up(float(values[i]), precision)
                    ok = expected is not None and abs(actual - expected) < 0.5 * 10.0 ** -precision
                    report.checks.append(Check("metric", name, expected, actual, ok, str(topic["id"]),
                                               str(model["name"]), precision))
    finally:
        if own_work and not keep:
            shutil.rmtree(work, ignore_errors=True)
        elif own_work:
            log(f"regression {cfg.name}: index and runs kept in {work}")
    report.seconds = time.perf_counter() - start
    return report


def run_with_anserini(config: str | os.PathLike | Config, corpus_path=None, corpus_root=None, topics_dir=None,
                      work_dir=None, index_threads: int | None = None, keep: bool = False, dry_run: bool = False,
                      log=None) -> tuple[Report, str]:
    """Hand the config to Anserini's own runner (``ReproduceFromDocumentCollection --index --verify --search``).

    The config goes on the classpath as ``reproduce/from-document-collection/configs/<name>.yaml`` (a config
    bundled in the jar is used as it is), its topic and qrels files are linked into ``tools/topics-and-qrels`` of
    the working folder, where the runner also writes ``indexes/`` and ``runs/``. Returns the report parsed from
    the runner's log (Anserini's rules: a metric above its expected value passes) and the log itself.
    """
    from ..anserini import java_run

    cfg = config if isinstance(config, Config) else load_config(config)
    d = cfg.data
    log = log or logger.info
    start = time.perf_counter()
    corpus = resolve_corpus(cfg, corpus_path, corpus_root)
    files = []
    for t in d["topics"]:
        files.append((str(t["path"]), resolve_data_file(cfg, str(t["path"]), "topics", topics_dir)))
        qrel = str(t.get("qrel") or t.get("qrels"))
        files.append((qrel, resolve_data_file(cfg, qrel, "qrels", topics_dir)))
    classpath = extra_classpath(d)
    own_work = work_dir is None
    work = work_folder(work_dir, "regression work folder", prefix="splade-regression-anserini-", what="--work-dir")
    stage = Path(tempfile.mkdtemp(prefix="splade-regression-config-"))
    try:
        if cfg.path is not None:
            name = f"splade-pyserini.{cfg.name}"
            target = stage / CONFIG_DIR_IN_JAR / f"{name}.yaml"
            target.parent.mkdir(parents=True)
            target.write_text(cfg.text, encoding="utf-8")
            classpath = [str(stage), *classpath]
        else:
            name = cfg.name
        tq = work / "tools" / TOPICS_DIR
        tq.mkdir(parents=True, exist_ok=True)
        for rel, src in files:
            link = tq / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(src.resolve(), link)
        args = ["--config", name, "--corpus-path", str(Path(corpus).resolve()), "--index", "--verify", "--search",
                "--search-pool", "1"]
        if index_threads:
            args += ["--index-threads", str(int(index_threads))]
        if dry_run:
            args.append("--dry-run")
        log(f"regression {cfg.name}: running Anserini's {RUNNER_CLASS.rsplit('.', 1)[-1]} in {work}")
        from ..onnx_export import java_env

        proc = java_run(RUNNER_CLASS, args, classpath, capture_output=True, text=True, cwd=work,
                        env=java_env(d, cfg.folder))
        text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if own_work and not keep:
            shutil.rmtree(work, ignore_errors=True)
    report = Report(config=cfg.name, runner="Anserini ReproduceFromDocumentCollection")
    for m in re.finditer(r"^(.+?): expected=(-?\d+), actual=(-?\d+)$", text, re.M):
        report.checks.append(Check("stat", m.group(1), int(m.group(2)), int(m.group(3)), False))
    if "Index statistics successfully verified" in text:
        for key, value in (d.get("index_stats") or {}).items():
            report.checks.append(Check("stat", str(key), int(value), int(value), True))
    pattern = re.compile(r"\[(OK\*?|FAIL)\]\s+expected: (\S+) actual: (\S+) \(delta=[^)]*\)"
                         r" - metric: (\S+)\s+model: (\S+) topics: (\S+)")
    for m in pattern.finditer(text):
        report.checks.append(Check("metric", m.group(4), float(m.group(2)), float(m.group(3)),
                                   m.group(1) != "FAIL", m.group(6), m.group(5), 4))
    if proc.returncode != 0 and not report.failures:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        errors = [ln for ln in lines if "Exception" in ln or "Error" in ln]
        raise SpladeError(f"Anserini's runner failed (exit {proc.returncode}): {(errors or lines or ['?'])[-1][:400]}")
    report.seconds = time.perf_counter() - start
    return report, text


