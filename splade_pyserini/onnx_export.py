"""``splade-pyserini export-onnx``: a query encoder that Anserini runs itself (ONNX graph + WordPiece vocabulary).

The exported folder holds:

* ``model.onnx`` — one query in, its SPLADE vector out: input ``input_ids`` ``[1, length]`` (int64, [CLS] … [SEP],
  token type 0, no padding), outputs ``output_idx`` (int64 vocabulary ids, ascending) and ``output_weights``
  (float64, > 0). The graph holds the whole formula: the model's forward pass, the max over positions, log1p∘relu
  and the card's variant rule (``lexical``: only the query's own non-special token ids keep a weight; ``doc``: no
  model at all, the binary bag of the query's non-special tokens, weight 1 each — the same rule as the package's
  encoder, so a ``doc`` card exports too);
* ``vocab.txt`` — the WordPiece vocabulary, one token per line, line number = id;
* ``splade_onnx.json`` — what the Java encoder needs beside them: scale, query length limit, lower-casing, source.

The graph computes in **float64** (the float32 weights cast once at load): its weights are the float64 formula's,
so they quantise exactly as this package's query weights do, whatever the CPU. ONNX Runtime has no float64
``Erf``, so every ``Erf`` of the exported graph (the exact GELU) is replaced by W. J. Cody's rational approximation
of erf, written in float64 operations that it has (relative error near 1e-16). ``--precision float32`` exports the
model's own float32 graph instead (faster, but weights near a rounding boundary may then differ by one step).

The Java side is ``io.anserini.encoder.sparse.SpladePyseriniEncoder`` in the Java extension: Anserini loads it as
``-encoder SpladePyserini`` and finds the folder through ``-Dsplade.onnx=DIR`` or ``SPLADE_PYSERINI_ONNX=DIR``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from .errors import SpladeError

MODEL_FILE = "model.onnx"
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "splade_onnx.json"
PROPERTY = "splade.onnx"
ENVIRONMENT = "SPLADE_PYSERINI_ONNX"
ENCODER_NAME = "SpladePyserini"  # Anserini's -encoder NAME for io.anserini.encoder.sparse.SpladePyseriniEncoder
OPSET = 17  # Anserini 2.x bundles ONNX Runtime 1.17 (opsets up to 20, IR version up to 9)
IR_VERSION = 8

# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969); the coefficients
# of his CALERF routine (|x| <= 0.46875: erf; 0.46875 < |x| <= 4 and |x| > 4: erfc).
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
      1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
      8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
      2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
      3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
      6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
      2.33520497626869185e-3)
_ONE_OVER_SQRT_PI = 5.6418958354775628695e-1


def erf64(x):
    """erf of a float64 tensor from elementwise operations only (Cody's CALERF), for graphs without a float64 Erf."""
    import torch

    y = x.abs()
    z = y * y  # |x| <= 0.46875: erf = x P(x²)/Q(x²)
    num, den = _A[4] * z, z
    for i in range(3):
        num, den = (num + _A[i]) * z, (den + _B[i]) * z
    small = x * (num + _A[3]) / (den + _B[3])
    num, den = _C[8] * y, y  # 0.46875 < |x| <= 4: erfc = exp(-x²) P(|x|)/Q(|x|)
    for i in range(7):
        num, den = (num + _C[i]) * y, (den + _D[i]) * y
    middle = (num + _C[7]) / (den + _D[7])
    far = torch.maximum(y, torch.full_like(y, 4.0))  # |x| > 4: erfc = exp(-x²)/|x| (1/√π + P(1/x²)/Q(1/x²)/x²)
    z = 1.0 / (far * far)
    num, den = _P[5] * z, z
    for i in range(4):
        num, den = (num + _P[i]) * z, (den + _Q[i]) * z
    tail = (_ONE_OVER_SQRT_PI - z * (num + _P[4]) / (den + _Q[4])) / far
    rational = torch.where(y <= 4.0, middle, tail)
    head = torch.floor(y * 16.0) / 16.0  # exp(-x²) as exp(-head²) exp(-(x-head)(x+head)): no cancellation
    erfc = torch.exp(-head * head) * torch.exp(-(y - head) * (y + head)) * rational
    return torch.where(y <= 0.46875, small, torch.sign(x) * ((0.5 - erfc) + 0.5))


class _QueryGraph:
    """Builds the ``torch.nn.Module`` traced into the graph (a factory, so torch is imported only when used)."""

    @staticmethod
    def build(model, variant: str, vocab_size: int, special_ids: list[int], static_weights=None):
        """``static_weights``: the doc variant's per-token query weights (``[vocab]``; None: each token weighs 1)."""
        import torch

        class QueryGraph(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model
                keep = torch.ones(vocab_size, dtype=torch.float64)
                keep[torch.as_tensor(special_ids, dtype=torch.long)] = 0.0
                if static_weights is not None:  # the float32 values the package multiplies by, exactly
                    keep = keep * torch.as_tensor(static_weights, dtype=torch.float32).double()
                self.register_buffer("not_special", keep)

            def own_tokens(self, input_ids):
                """1.0 (or the static weight) at the query's own non-special token ids, 0.0 elsewhere (``[vocab]``)."""
                bag = torch.zeros(vocab_size, dtype=torch.float64).scatter(0, input_ids[0],
                                                                            torch.ones_like(input_ids[0], dtype=torch.float64))
                return bag * self.not_special

            def forward(self, input_ids):
                if variant == "doc":  # no query model: the bag of words (static weights when the card has them)
                    weights = self.own_tokens(input_ids)
                else:
                    logits = self.model(input_ids=input_ids).logits[0]
                    weights = torch.log1p(torch.relu(logits.amax(dim=0).double()))
                    if variant == "lexical":
                        weights = weights * self.own_tokens(input_ids)
                idx = torch.nonzero(weights > 0).squeeze(1)
                return idx, weights[idx]

        return QueryGraph().eval()


def _erf_nodes():
    """The ONNX nodes of :func:`erf64` as a graph from input ``x`` to output ``y`` (float64, any shape)."""
    import onnx
    import torch

    class Erf(torch.nn.Module):
        def forward(self, x):
            return erf64(x)

    buf = io.BytesIO()
    torch.onnx.export(Erf(), (torch.zeros(3, dtype=torch.float64),), buf, dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}}, opset_version=OPSET)
    return onnx.load_from_string(buf.getvalue()).graph


def _replace_erf(graph) -> int:
    """Replaces every ``Erf`` node of ``graph`` by the float64 nodes of :func:`erf64`; returns how many."""
    import onnx

    template = None
    nodes, count = [], 0
    for node in graph.node:
        if node.op_type != "Erf":
            nodes.append(node)
            continue
        if template is None:
            template = _erf_nodes()
        count += 1
        prefix = f"erf64_{count}/"
        names = {"x": node.input[0], "y": node.output[0]}

        def rename(name, names=names, prefix=prefix):
            return names.get(name, prefix + name) if name else name

        for init in template.initializer:
            copy = onnx.TensorProto()
            copy.CopyFrom(init)
            copy.name = rename(init.name)
            graph.initializer.append(copy)
        for sub in template.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(sub)
            copy.name = prefix + sub.name
            copy.input[:] = [rename(n) for n in sub.input]
            copy.output[:] = [rename(n) for n in sub.output]
            nodes.append(copy)
    del graph.node[:]
    graph.node.extend(nodes)
    return count


def _float32_initializers(graph) -> None:
    """Stores float64 initializers that are exactly float32 values as float32 plus a ``Cast`` (half the file; ONNX
    Runtime folds the casts once at load)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.DOUBLE:
            continue
        value = numpy_helper.to_array(init)
        single = value.astype(np.float32)
        if value.size < 16 or not np.array_equal(single.astype(np.float64), value):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(single, name + "/float32"))
        casts.append(onnx.helper.make_node("Cast", [name + "/float32"], [name], to=onnx.TensorProto.DOUBLE,
                                           name=name + "/cast"))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def _tokenizer_settings(tokenizer, source: str) -> dict:
    """The WordPiece settings the Java side reproduces; other tokenizers are refused."""
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    model, normalizer = backend.get("model") or {}, backend.get("normalizer") or {}
    if model.get("type") != "WordPiece" or normalizer.get("type") != "BertNormalizer":
        raise SpladeError(f"{source}: export-onnx supports BERT WordPiece tokenizers only (this one is "
                          f"{model.get('type')} with {normalizer.get('type')}); search with splade-pyserini instead.")
    lowercase = bool(normalizer.get("lowercase", True))
    strip = normalizer.get("strip_accents")
    if (lowercase if strip is None else bool(strip)) != lowercase:
        raise SpladeError(f"{source}: the tokenizer strips accents without lower-casing (or the reverse), which the "
                          "Java WordPiece tokenizer cannot reproduce.")
    return {"lowercase": lowercase, "unk_token": model.get("unk_token", "[UNK]"),
            "cls_token": tokenizer.cls_token, "sep_token": tokenizer.sep_token}


def export_onnx(encoder, output: str | os.PathLike, precision: str = "float64", **card_fields) -> dict:
    """Writes the ONNX query encoder of ``encoder`` (a card name, model folder or Hugging Face id, or an
    :class:`~splade_pyserini.cards.EncoderCard`) into ``output`` (replaced whole on success, never half-written);
    returns its config (``splade_onnx.json``)."""
    try:
        import onnx
    except ImportError:
        raise SpladeError("export-onnx needs the onnx package: pip install 'splade-pyserini[onnx]'.") from None
    import torch

    from .cards import EncoderCard, resolve_card
    from .checkpoint import load_masked_lm, resolve_model_dir
    from .fileio import atomic_directory

    if precision not in ("float64", "float32"):
        raise SpladeError(f"--precision must be float64 or float32, not {precision!r}.")
    card = encoder if isinstance(encoder, EncoderCard) else resolve_card(str(encoder), **card_fields)
    model_dir = resolve_model_dir(card.model)
    model, tokenizer = load_masked_lm(model_dir)
    settings = _tokenizer_settings(tokenizer, str(encoder))
    vocab = tokenizer.get_vocab()
    tokens = [None] * len(vocab)
    for token, i in vocab.items():
        if i < len(tokens):
            tokens[i] = token
    if None in tokens or any(("\n" in t or "\r" in t) for t in tokens):
        raise SpladeError(f"{encoder}: the vocabulary's ids are not 0…{len(tokens) - 1}, one token per line; cannot write vocab.txt.")
    vocab_size = int(getattr(model.config, "vocab_size", len(tokens)))
    special_ids = sorted({int(i) for i in tokenizer.all_special_ids})
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")  # traceable attention, no fused kernels in the graph
    dtype = torch.float64 if precision == "float64" else torch.float32
    static = None
    if card.query_weights:  # sentence-transformers' inference-free models: static per-token query weights
        from .st_bridge import read_static_weights

        static = read_static_weights(card.query_weights, tokenizer, vocab_size)
    graph = _QueryGraph.build(model.to(dtype), card.variant, vocab_size, special_ids, static)
    example = torch.as_tensor([tokenizer("a query example")["input_ids"]], dtype=torch.long)
    buf = io.BytesIO()
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(graph, (example,), buf, dynamo=False, input_names=["input_ids"],
                          output_names=["output_idx", "output_weights"], dynamic_axes={"input_ids": {1: "length"}},
                          opset_version=OPSET, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    erfs = _replace_erf(proto.graph) if precision == "float64" else 0
    if precision == "float64":
        _float32_initializers(proto.graph)
    proto.ir_version = min(proto.ir_version, IR_VERSION)
    onnx.checker.check_model(proto)
    config = {
        "format": 1, "encoder": card.name, "model": card.model, "variant": card.variant, "scale": card.scale,
        "query_max_length": card.query_max_length, "precision": precision, "vocab_size": vocab_size,
        "special_ids": special_ids, "opset": OPSET, "erf_replaced": erfs,
        "inputs": ["input_ids"], "outputs": ["output_idx", "output_weights"], **settings,
    }
    with atomic_directory(output) as tmp:
        onnx.save(proto, str(Path(tmp) / MODEL_FILE))
        (Path(tmp) / VOCAB_FILE).write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
        (Path(tmp) / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return config


class OnnxQueryEncoder:
    """The exported query encoder run by ONNX Runtime in Python: ``[{token: int weight}]`` as Anserini's Java class
    computes them (tokenised by the model's own tokenizer files, which the export checked are WordPiece)."""

    def __init__(self, folder: str | os.PathLike, tokenizer):
        import onnxruntime

        folder = Path(folder)
        self.config = read_config(folder)
        self.tokens = (folder / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
        self.tokenizer = tokenizer
        self.session = onnxruntime.InferenceSession(str(folder / MODEL_FILE), providers=["CPUExecutionProvider"])

    def weights(self, text: str):
        """(vocabulary ids, float weights) of one query."""
        import numpy as np

        ids = self.tokenizer(text, truncation=True, max_length=self.config["query_max_length"])["input_ids"]
        idx, weights = self.session.run(None, {"input_ids": np.asarray([ids], dtype=np.int64)})
        return idx, weights

    def quantized(self, texts) -> list[dict[str, int]]:
        from .encoder import quantize

        out = []
        for text in texts:
            idx, weights = self.weights(text)
            q = quantize(weights, self.config["scale"])
            out.append({self.tokens[i]: int(w) for i, w in zip(idx.tolist(), q.tolist()) if w})
        return out


def read_config(folder: str | os.PathLike) -> dict:
    """The ``splade_onnx.json`` of an exported folder, checked to hold the model and vocabulary."""
    folder = Path(folder)
    for name in (CONFIG_FILE, MODEL_FILE, VOCAB_FILE):
        if not (folder / name).is_file():
            raise SpladeError(f"{folder} has no {name}; write it with: splade-pyserini export-onnx --encoder E --output {folder}")
    return json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))


def compare_weights(folder: str | os.PathLike, encoder, texts) -> tuple[int, list[tuple[int, str, int, int]]]:
    """(number of integer weights, [(query index, token, ONNX weight, package weight)] that differ) of ``texts``
    encoded by the exported folder (onnxruntime in Python) and by ``encoder`` (a :class:`SpladeEncoder`)."""
    got = OnnxQueryEncoder(folder, encoder.tokenizer).quantized(texts)
    want = encoder.quantized_queries(texts)
    diff = [(i, t, g.get(t, 0), w.get(t, 0)) for i, (g, w) in enumerate(zip(got, want))
            for t in sorted(set(g) | set(w)) if g.get(t) != w.get(t)]
    return sum(map(len, want)), diff


def _cmd_export_onnx(args) -> int:
    config = export_onnx(args.encoder, args.output, precision=args.precision)
    print(f"exported {config['encoder']} ({config['variant']}, {config['precision']}) to {args.output}; search in "
          f"Anserini with -encoder {ENCODER_NAME} and -D{PROPERTY}={os.path.abspath(args.output)} "
          f"(or {ENVIRONMENT}=…)")
    if args.check:
        from .encoder import load_encoder
        from .topics import read_topics

        encoder = load_encoder(args.encoder, device="cpu")
        for source in args.check:
            topics = read_topics(source)
            qids, texts = list(topics), list(topics.values())
            total, diff = compare_weights(args.output, encoder, texts)
            shown = ", ".join(f"q{qids[i]} {t!r} {a} vs {b}" for i, t, a, b in diff[:5])
            print(f"check {source}: {len(qids)} queries, {total} integer weights, {len(diff)} differ from "
                  f"splade-pyserini's" + (f" ({shown})" if diff else ""))
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("export-onnx", help="write an ONNX query encoder that Anserini runs (-encoder SpladePyserini)")
    p.add_argument("--encoder", required=True, help="card name, model folder or Hugging Face id")
    p.add_argument("--output", required=True, help="folder for model.onnx, vocab.txt and splade_onnx.json")
    p.add_argument("--precision", default="float64", choices=["float64", "float32"],
                   help="float64 (default): the float64 formula, weights equal this package's; float32: faster")
    p.add_argument("--check", nargs="+", default=None, metavar="TOPICS",
                   help="then compare the ONNX integer query weights with this package's on these topics")
    p.set_defaults(func=_cmd_export_onnx)


# --- regression configs that encode their topics in Anserini (regression export --onnx) ---------------------------
def text_topics_lines(qids, texts) -> list[str]:
    """Raw-text topics for Anserini's TSV topic readers, ``qid<TAB>text``: runs of whitespace (tabs, newlines)
    become one space, which changes no WordPiece token."""
    return [f"{qid}\t{' '.join(str(text).split())}" for qid, text in zip(qids, texts)]


def encoder_classes(config_data: dict) -> list[str]:
    """The Anserini query encoder classes that a config's models name with ``-encoder NAME``."""
    import shlex

    out = []
    for model in config_data.get("models") or []:
        args = shlex.split(str(model.get("params") or ""))
        out += [f"io.anserini.encoder.sparse.{args[i + 1]}Encoder" for i, a in enumerate(args[:-1]) if a == "-encoder"]
    return out


def java_env(config_data: dict, config_folder: str | os.PathLike | None) -> dict | None:
    """The environment for Java steps of a config whose topics are encoded by :data:`ENCODER_NAME`:
    ``SPLADE_PYSERINI_ONNX`` pointing to its exported model (the config's ``splade_pyserini.onnx_model``, relative
    to the config's folder), or None when the config does not need one. A missing folder is a one-line error
    naming the command that writes it; an already set ``SPLADE_PYSERINI_ONNX`` wins."""
    if f"io.anserini.encoder.sparse.{ENCODER_NAME}Encoder" not in encoder_classes(config_data):
        return None
    if os.environ.get(ENVIRONMENT):
        read_config(os.environ[ENVIRONMENT])
        return dict(os.environ)
    own = config_data.get("splade_pyserini") or {}
    rel = own.get("onnx_model")
    if not rel:
        raise SpladeError(f"the config searches with -encoder {ENCODER_NAME} but names no splade_pyserini.onnx_model; "
                          f"set {ENVIRONMENT}=DIR (written by splade-pyserini export-onnx).")
    folder = Path(config_folder or ".") / rel
    if not (folder / MODEL_FILE).is_file():
        raise SpladeError(f"the config's ONNX query encoder {folder} is missing; write it with: splade-pyserini "
                          f"export-onnx --encoder {own.get('encoder', 'E')} --output {folder} (or set {ENVIRONMENT}=DIR)")
    read_config(folder)
    return {**os.environ, ENVIRONMENT: str(folder.resolve())}
