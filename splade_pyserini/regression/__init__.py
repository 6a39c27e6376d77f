"""Anserini regression configs for SPLADE encoders: ``splade-pyserini regression export|run|list``.

A regression config is a YAML file in the schema of Anserini 2.x's ``io.anserini.reproduce.
ReproduceFromDocumentCollection`` (``reproduce/from-document-collection/configs/*.yaml`` in the fat jar): the corpus
(``corpus``, ``corpus_path``, optional ``download_url``/``download_checksum``), how to index it (``index_path``,
``collection_class``, ``generator_class``, ``index_threads``, ``index_options``), the index statistics to verify
(``index_stats``), the metrics as trec_eval commands (``metrics``), the topics (``topic_reader``, ``topics`` with
``name``/``id``/``path``/``qrel``) and the models with their search parameters and expected results
(``models[].params``, ``models[].results{metric: [one value per topic set]}``).

``export`` runs a SPLADE encoder on a BEIR collection (encode → index → search → evaluate, or reuses given vectors
or index) and writes such a config beside its two data files, under ``topics-and-qrels/`` (the folder Anserini
calls ``tools/topics-and-qrels``):

* the queries pre-encoded with :meth:`SpladeEncoder.quantized_queries` — the integer weights exactly as
  ``splade-pyserini search`` searches them — one ``qid<TAB>tokens`` line per query, each token repeated ``weight``
  times (Anserini's pre-encoded impact topics: ``SearchCollection -impact -pretokenized`` splits on whitespace and
  boosts each term by its count, so a query scores ``Σ weight × impact``, the same scores as ``SpladeSearcher``),
  gzipped (Anserini reads ``.gz`` topics);
* the qrels in TREC format.

The default config names only stock Anserini classes (``JsonVectorCollection``, ``DefaultLuceneDocumentGenerator``,
``SearchCollection``, trec_eval), so stock Anserini reproduces it; ``--fast`` names the Java extension's
collection and generator instead (see :mod:`.javaext`). Keys Anserini does not know are ignored by it; the config
carries one of its own, ``splade_pyserini``, recording the encoder and how to re-create the corpus.

``run`` executes a config with the Anserini jar that Pyserini ships, each step in a Java subprocess: index
(``IndexCollection`` with the config's classes and options), verify the index statistics exactly
(``IndexReaderUtils -stats``), search (``SearchCollection`` with the config's topic reader and model parameters),
evaluate with the fat jar's trec_eval (``io.anserini.eval.TrecEval``, the bundled native trec_eval), and compare
each metric with the expected value at the config's ``metric_precision``. Unlike Anserini's runner, which also
accepts results *above* the expected value, any difference fails. ``--runner anserini`` hands the config to
Anserini's own ``ReproduceFromDocumentCollection`` instead (its rules, its log). Anserini's bundled configs are
accepted by name (``splade-pyserini regression list --anserini``); they need their corpora and topic files.

Paths: ``corpus_path`` is looked up under ``--corpus-root`` (or ``$SPLADE_PYSERINI_CORPUS_ROOT``), the current
folder, Pyserini's cache and Anserini's usual roots, unless ``--corpus-path`` names the corpus folder itself.
Topic and qrels files are looked up in ``--topics-dir``, the config's ``topics-and-qrels/`` and its own folder,
then ``./tools/topics-and-qrels``.


The package, in the order a config is used:

* :mod:`.config`: the schema, reading/checking/writing a config, metric entries;
* :mod:`.locate`: finding the corpus, topics and qrels a config names;
* :mod:`.java_steps`: the Java subprocesses (index, statistics, search, trec_eval);
* :mod:`.run`: running a config (ours or Anserini's runner) into a :class:`Report`;
* :mod:`.export`: writing a config from an encoder and a BEIR collection;
* :mod:`.cli`: the ``regression`` subcommands.

It may import the package's pipeline modules (``anserini``, ``javaext``, ``vectors``, ``vector_pins``, ``index``,
``search``, ``encoder``, ``onnx_export``, ``fileio``, ``errors``, …); nothing in the pipeline imports it (only the
command line, through :func:`add_commands`).
"""

from __future__ import annotations

from .cli import add_commands
from .config import (CONFIG_DIR_IN_JAR, DEFAULT_METRICS, STATS_KEYS, STOCK_COLLECTION, STOCK_GENERATOR, TOPICS_DIR,
                     Config, anserini_configs, format_config, load_config, round_half_up, trec_eval_metric, validate)
from .export import export_regression, read_pre_encoded_topics, topics_lines
from .java_steps import (SEARCH_MAIN, evaluate_metric, extra_classpath, index_args, index_corpus, index_stats, search,
                         search_args, run_file_name)
from .locate import CORPUS_ROOT_ENV, corpus_roots, resolve_corpus, resolve_data_file, topic_dirs
from .run import RUNNER_CLASS, Check, Report, check_pinned_vectors, run_regression, run_with_anserini

__all__ = [
    "CONFIG_DIR_IN_JAR", "CORPUS_ROOT_ENV", "DEFAULT_METRICS", "RUNNER_CLASS", "SEARCH_MAIN", "STATS_KEYS",
    "STOCK_COLLECTION", "STOCK_GENERATOR", "TOPICS_DIR", "Check", "Config", "Report", "add_commands",
    "anserini_configs", "check_pinned_vectors", "corpus_roots", "evaluate_metric", "export_regression",
    "extra_classpath", "format_config", "index_args", "index_corpus", "index_stats", "load_config",
    "read_pre_encoded_topics", "resolve_corpus", "resolve_data_file", "round_half_up", "run_file_name",
    "run_regression", "run_with_anserini", "search", "search_args", "topic_dirs", "topics_lines", "trec_eval_metric",
    "validate",
]
