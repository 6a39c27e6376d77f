"""The package's messages go through logging: a library caller captures or silences them, the command line still
shows them on stderr as before; the Pyserini plugin says why it falls back to Pyserini's own search path."""

from __future__ import annotations

import logging
import types

from splade_pyserini import _startup, cli, javaext
from splade_pyserini.errors import SpladeError
from splade_pyserini.pyserini_plugin import patch_impact_searcher


def test_a_library_caller_captures_or_silences_a_warning(caplog, capsys):
    caplog.set_level(logging.WARNING, logger="splade_pyserini")
    _startup._quietly("no_such_step")  # the start-up hook reports a failed step, never raises
    [record] = [r for r in caplog.records if r.name.startswith("splade_pyserini")]
    assert record.levelno == logging.WARNING and "no_such_step skipped" in record.getMessage()
    caplog.clear()
    caplog.set_level(logging.ERROR, logger="splade_pyserini")  # the caller silences the package's warnings
    _startup._quietly("no_such_step")
    assert not [r for r in caplog.records if r.name.startswith("splade_pyserini")]
    assert "no_such_step" not in capsys.readouterr().err


def _run(path, scores: dict[str, float]) -> None:
    ranked = sorted(scores.items(), key=lambda x: -x[1])
    path.write_text("".join(f"q1 Q0 {d} {i + 1} {s} t\n" for i, (d, s) in enumerate(ranked)))


def test_the_command_line_prints_the_messages_on_stderr_without_logger_prefixes(tmp_path, capsys):
    _run(tmp_path / "a.trec", {"d1": 3.0, "d2": 2.0, "d3": 1.0})
    _run(tmp_path / "b.trec", {"d2": 3.0, "d3": 2.0, "d4": 1.0})
    out = tmp_path / "fused.trec"
    logger = logging.getLogger("splade_pyserini")
    before = (list(logger.handlers), logger.level, logger.propagate)
    assert cli.main(["fuse", "--run", str(tmp_path / "a.trec"), str(tmp_path / "b.trec"), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"fused 2 runs over 1 queries; wrote {out}\n" and captured.out == ""
    assert out.is_file()
    assert (list(logger.handlers), logger.level, logger.propagate) == before  # the caller's set-up is left alone
    # an error: one line, `error: ` and the message, as before
    assert cli.main(["fuse", "--run", str(tmp_path / "a.trec"), "--output", str(out)]) == 2
    assert capsys.readouterr().err == "error: fuse needs at least two runs: --run A.trec B.trec.\n"


class _FakeImpactSearcher:
    """The parts of Pyserini's LuceneImpactSearcher that the plugin wraps (no JVM)."""

    def __init__(self, index_dir: str, query_encoder, min_idf=0, encoder_type: str = "pytorch"):
        self.index_dir, self.query_encoder, self.min_idf = index_dir, query_encoder, min_idf

    def search(self, q, k=10, fields=dict()):
        return ["pyserini's own path"]

    def batch_search(self, queries, qids, k=10, threads=1, fields=dict()):
        return {q: ["pyserini's own path"] for q in qids}

    def close(self):
        pass


def test_the_pyserini_plugin_says_why_it_falls_back(tiny_model, tmp_path, monkeypatch, caplog):
    module = types.SimpleNamespace(LuceneImpactSearcher=type("LuceneImpactSearcher", (_FakeImpactSearcher,), {}))
    patch_impact_searcher(module)

    def refuse(quiet=False):
        raise SpladeError("the Java extension must be enabled before the JVM starts")

    monkeypatch.setattr(javaext, "enable", refuse)
    caplog.set_level(logging.WARNING, logger="splade_pyserini")
    searcher = module.LuceneImpactSearcher(str(tmp_path / "index"), str(tiny_model))
    assert searcher._splade_batch is None
    assert searcher.search("coral reefs") == ["pyserini's own path"]
    [record] = [r for r in caplog.records if r.name == "splade_pyserini.pyserini_plugin"]
    assert record.levelno == logging.WARNING
    assert "Pyserini's own path" in record.getMessage()
    assert "SpladeError: the Java extension must be enabled before the JVM starts" in record.getMessage()


def test_quiet_commands_keep_warnings_and_errors_only(capsys):
    from splade_pyserini.logs import cli_logging

    logger = logging.getLogger("splade_pyserini.example")
    with cli_logging(quiet=True):  # what `teach --quiet` (-q) sets after parsing
        logger.info("wrote 3 files")
        logger.warning("an index without a recorded scale")
        logger.error("the run is empty")
    with cli_logging() as set_quiet:
        logger.info("shown")
        set_quiet(True)
        logger.info("hidden")
    assert capsys.readouterr().err == ("warning: an index without a recorded scale\nerror: the run is empty\n"
                                       "shown\n")
