"""Option names agree across the ``splade-pyserini`` commands; old spellings still work, hidden and with a warning."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

from splade_pyserini.cli import build_parser, main

OLD_NAMES = {"--k", "--top-k", "--depth", "--out", "--out-dir", "--workdir"}


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(command words, sub-parser) for every command, nested ones (``bench search``) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _commands(sub, (*prefix, name))


def _visible_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions if a.help != argparse.SUPPRESS for s in a.option_strings}


def test_every_command_spells_hits_run_and_output_alike():
    commands = dict(_commands(build_parser()))
    assert {("rerank",), ("dense",), ("fuse",), ("search",), ("bm25",), ("bench", "search")} <= set(commands)
    for words, sub in commands.items():
        visible = _visible_options(sub)
        assert not OLD_NAMES & set(visible), (words, sorted(OLD_NAMES & set(visible)))
        for option in ("--json",):  # a flag that prints JSON (evaluate), never a path
            if option in visible:
                assert visible[option].nargs == 0, (words, option)
        if "--run" in visible:  # input runs; read by cli.named_runs wherever several are taken
            run = visible["--run"]
            assert run.nargs in (None, "+") and run.required, words
    for words in (("rerank",), ("dense",), ("fuse",), ("search",), ("bm25",), ("bench", "search")):
        assert "--hits" in _visible_options(commands[words]), words
    for words in (("evaluate-suite",), ("bench", "encode"), ("bench", "search")):
        assert "--output" in _visible_options(commands[words]), words


@pytest.mark.parametrize("argv, dest, value", [
    (["fuse", "--run", "a", "b", "--output", "o", "--k", "7"], "hits", 7),
    (["dense", "--corpus", "c", "--topics", "t", "--model", "m", "--output", "o", "--k", "9"], "hits", 9),
    (["quickstart", "--workdir", "w"], "workdir", "w"),
    (["bench", "search", "--index", "i", "--encoder", "e", "--topics", "t", "--json", "n.json"], "output", "n.json"),
    (["evaluate-suite", "--collections", "q", "--runs", "a=r", "--baseline", "a", "--treatment", "a",
      "--out-dir", "d"], "out_dir", "d"),
    (["regression", "run", "c.yaml", "--json", "r.json"], "output", "r.json"),
    (["regression", "export", "--encoder", "e", "--collection", "c", "--precision", "3"], "precision", 3),
])
def test_old_spellings_still_work_with_a_warning(argv, dest, value, caplog):
    caplog.set_level(logging.WARNING, logger="splade_pyserini")
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    old = next(a for a in argv if a in OLD_NAMES | {"--json", "--precision"})
    assert any(f"{old} is deprecated; use --" in r.getMessage() for r in caplog.records)


def test_a_renamed_required_option_is_still_required(capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate-suite", "--collections", "q", "--runs", "a=r", "--baseline", "a", "--treatment", "a"])
    assert e.value.code == 2
    assert "the following arguments are required: --output" in capsys.readouterr().err


def _write_run(path, ranked: list[tuple[str, float]]) -> None:
    path.write_text("".join(f"1 Q0 {d} {i + 1} {s} t\n" for i, (d, s) in enumerate(ranked)))


def test_run_is_name_equals_path_or_a_path_in_evaluate_and_compare(tmp_path, capsys):
    (tmp_path / "qrels.txt").write_text("1 0 d1 1\n1 0 d2 0\n2 0 d3 1\n")
    good, bad = tmp_path / "good.trec", tmp_path / "bad.trec"
    _write_run(good, [("d1", 2.0), ("d2", 1.0)])
    bad.write_text("1 Q0 d2 1 2.0 t\n1 Q0 d1 2 1.0 t\n2 Q0 d3 1 1.0 t\n")
    good.write_text(good.read_text() + "2 Q0 d3 1 1.0 t\n")
    assert main(["evaluate", "--qrels", str(tmp_path / "qrels.txt"), "--run", f"mine={good}", str(bad),
                 "--metrics", "map", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores == {"mine": {"map": 1.0}, "bad.trec": {"map": 0.75}}
    assert main(["compare", "--qrels", str(tmp_path / "qrels.txt"), "--run", str(bad), f"mine={good}",
                 "--metrics", "map", "--format", "csv", "--permutations", "10"]) == 0
    table = capsys.readouterr().out
    assert "bad.trec" in table and "mine" in table
    assert main(["evaluate", "--qrels", str(tmp_path / "qrels.txt"), "--run", f"x={good}", f"x={bad}"]) == 2
    assert "name 'x' given twice" in capsys.readouterr().err
