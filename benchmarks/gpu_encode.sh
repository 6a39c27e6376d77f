#!/usr/bin/env bash
# GPU encoding benchmark for a session with a device (H100/H200), as one prepared call:
#   run(command="bash benchmarks/gpu_encode.sh", carry=[".device"], timeout_s=540)
# Before the call, here:  mkdir -p .device/tok && cp ../shared/models/splade-tiny/tokenizer*.json .device/tok/
#   (.device/ is git-ignored; any bert-base-uncased tokenizer folder works).
# The device image has torch, transformers, sentence-transformers, pyarrow; Pyserini is not importable there, so
# the Pyserini path runs as the emulation in splade_pyserini/bench/encode.py (checked identical to Pyserini 2.3).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
for extra in "" "--compile"; do
  python3 -m splade_pyserini bench encode --random-bert-base --tokenizer .device/tok --synthetic 20000 \
    --device cuda --peer-limit 3000 --format parquet $extra --output "$OUT/bench${extra:+-compiled}.json" \
    2>&1 | grep -v "it/s]" | tee -a "$OUT/bench.log"
done
