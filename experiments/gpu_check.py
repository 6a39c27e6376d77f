"""GPU checks for the training side (run on a CUDA machine; needs no shared/ data):

1. bench_train on a BERT-base SPLADE shape (random weights), 8 negatives, in bf16 / fp16 / fp32;
2. a tiny end-to-end trainer run on synthetic data (random BERT-tiny + a generated WordPiece vocabulary) in bf16 and
   fp16 (GradScaler path), whose output directory must load with load_encoder on the GPU.
Writes $OUT/gpu_check.json (or ./gpu_check.json).
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from splade_pyserini.train.bench import bench_train  # noqa: E402

out_dir = Path(os.environ.get("OUT", "."))
CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
results = {"device": torch.cuda.get_device_name(0) if CUDA else "cpu", "torch": torch.__version__, "bench": [], "train": []}


def save():
    (out_dir / "gpu_check.json").write_text(json.dumps(results, indent=2))


BENCH = ({"precision": "bf16", "batch_size": 20}, {"precision": "bf16", "batch_size": 64},
         {"precision": "fp16", "batch_size": 20}, {"precision": "fp32", "batch_size": 20}) if CUDA else ()
for kw in BENCH:
    t = time.time()
    r = bench_train(model="bert-base", device="cuda", n_negatives=8, query_length=32, doc_length=128, steps=10,
                    warmup_steps=3, **kw)
    r["wall_s"] = time.time() - t
    print(json.dumps(r), flush=True)
    results["bench"].append(r)
    save()
    torch.cuda.empty_cache()

# --- a tiny trainer run on synthetic data -------------------------------------------------------------------
from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast  # noqa: E402

from splade_pyserini.encoder import load_encoder  # noqa: E402
from splade_pyserini.train.mine import Pool, write_pools  # noqa: E402
from splade_pyserini.train.teachers import write_scores  # noqa: E402
from splade_pyserini.train.config import make_config  # noqa: E402
from splade_pyserini.train.trainer import train  # noqa: E402

tmp = Path(tempfile.mkdtemp())
words = [f"w{i}" for i in range(400)]
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
# transformers 5: the vocabulary is passed as a dict
tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
torch.manual_seed(0)
init = tmp / "init"
BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=128)).save_pretrained(init)
tok.save_pretrained(init)
import random  # noqa: E402

rnd = random.Random(0)
docs = {f"d{i}": " ".join(rnd.choice(words) for _ in range(rnd.randint(10, 60))) for i in range(200)}
with open(tmp / "corpus.jsonl", "w") as f:
    for d, t in docs.items():
        f.write(json.dumps({"_id": d, "text": t}) + "\n")
queries = {f"q{i}": " ".join(rnd.choice(words) for _ in range(4)) for i in range(16)}
with open(tmp / "queries.jsonl", "w") as f:
    for q, t in queries.items():
        f.write(json.dumps({"_id": q, "text": t}) + "\n")
pools = {q: Pool([f"d{i}"], [f"d{(i * 7 + k) % 200}" for k in range(1, 30)]) for i, q in enumerate(queries)}
write_pools(tmp / "pools.jsonl", pools, {"seed": 0})
write_scores(tmp / "scores.jsonl", {q: {d: rnd.uniform(-5, 5) for d in p.positives + p.negatives} for q, p in pools.items()})
for precision in (("bf16", "fp16") if CUDA else ("fp32",)):
    t = time.time()
    cfg = make_config(dict(model=str(init), output_dir=str(tmp / f"out-{precision}"), queries=str(tmp / "queries.jsonl"),
                           corpus=str(tmp / "corpus.jsonl"), pools=str(tmp / "pools.jsonl"), scores=str(tmp / "scores.jsonl"),
                           batch_size=8, steps=4, lr=1e-3, precision=precision, device=DEVICE, progress=False,
                           save_every=2, lambda_d=0.1, reg_T=2))
    st = train(cfg)
    enc = load_encoder(str(tmp / f"out-{precision}"), device=DEVICE)
    vec = enc.encode_queries([queries["q0"]])[0]
    rec = {"precision": st["precision"], "steps": st["step"], "loss": [h["loss"] for h in st["history"]],
           "flops": [h["flops"] for h in st["history"]], "encoder_device": enc.device, "query_terms": len(vec),
           "wall_s": time.time() - t}
    print(json.dumps(rec), flush=True)
    results["train"].append(rec)
    save()
print("done")
