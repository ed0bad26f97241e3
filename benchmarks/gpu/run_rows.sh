#!/usr/bin/env bash
# Every GPU row of benchmarks/RESULTS.md (issue #19) in one device call, plain TRL / stock lm-eval side by side with
# medbench in each row. Prepare the wheels and tokenizer the device machine lacks, here, once:
#   .venv/bin/python benchmarks/gpu/prepare_carry.py
# then on the device machine (the `device` tool's run, from the repository root; ~10 min of its 15, the last
# rows cut if the call's limit comes first):
#   run(command="bash benchmarks/gpu/run_rows.sh", carry=[".gpu-carry"], timeout_s=595)
# Each row writes its figures to $OUT/<row>.json and its output to $OUT/rows.log (the device returns 8 files at
# most); a row that fails or outruns its limit is logged and the next one runs. Copy each figure into RESULTS.md
# with the row's command as printed in rows.log.
# A plumbing check anywhere (no install, a tiny shape, a few steps):
#   SKIP_INSTALL=1 PY=.venv/bin/python SHAPE=tiny DEVICE=cpu STEPS=4 WARMUP=1 OUT=/tmp/rows bash benchmarks/gpu/run_rows.sh
# Left out: the vLLM rows (vLLM's wheels are far over what a call carries) and the weights hash on a GPU
# (bench_hash.py reads the embedded model's weights, which are not carried).
set -uo pipefail
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
PY=${PY:-python3}
TOK=.gpu-carry/smollm2-tokenizer
SHAPE=${SHAPE:-llama-3.2-1b} DEVICE=${DEVICE:-cuda} STEPS=${STEPS:-45} WARMUP=${WARMUP:-5}
LOG="$OUT/rows.log"
# USE_HUB_KERNELS=NO: transformers >= 5.2x swaps in hub kernels on CUDA by default, which offline cannot fetch.
export HF_HUB_OFFLINE=1 TQDM_DISABLE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false USE_HUB_KERNELS=NO

{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  if [ -z "${SKIP_INSTALL:-}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile .gpu-carry/wheels/*.whl
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .
  fi
  "$PY" -c "import torch, transformers, trl, peft, lm_eval; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
  'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__)"
} 2>&1 | tee "$LOG"
"$PY" -c "import medbench, medbench_plugins, trl, lm_eval, datasets" || { echo "set-up failed: see $LOG" | tee -a "$LOG"; exit 1; }

row() {  # row NAME SECONDS COMMAND...: run it under a time limit, keep its output in the log
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s): $*" | tee -a "$LOG"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v -E "Warning|warn\(|^\s*$" | tail -n 25 | tee -a "$LOG"
  echo "-- $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$LOG"
}

ROWS=${ROWS:-eval train}  # ROWS=train: the training rows only
# The evaluation rows first: short, and the likeliest to finish if the lease is cut short.
if [[ $ROWS == *eval* ]]; then
EVAL="$PY benchmarks/bench_eval.py --shape $SHAPE --tokenizer $TOK --device $DEVICE --items 256 --repeats 2"
row eval-letters 70 $EVAL --tasks medqa,medmcqa --batch-size 32 --json "$OUT/eval-letters.json"
row eval-texts 70 $EVAL --tasks triage_personnel,hyponatremia --batch-size 32 --json "$OUT/eval-texts.json"
fi
if [[ $ROWS == *train* ]]; then
TRAIN="$PY benchmarks/bench_train.py --shape $SHAPE --tokenizer $TOK --device $DEVICE --steps $STEPS --warmup-steps $WARMUP"
row sft-lora 110 $TRAIN --trainer sft --method lora --json "$OUT/sft-lora.json"
row dpo-lora 140 $TRAIN --trainer dpo --method lora --json "$OUT/dpo-lora.json"
row sft-full 110 $TRAIN --trainer sft --method full --json "$OUT/sft-full.json"
# Both sides checkpointing activations: the 2026-12-04 LoRA speed-up was the checkpointing medbench turns off on
# a GPU (1.36x at 3.0x the memory); this row is the same-memory comparison.
row sft-lora-ckpt 110 $TRAIN --trainer sft --method lora --medbench-option gradient_checkpointing=on \
    --json "$OUT/sft-lora-ckpt.json"
fi
# Last, as the likeliest to be cut: the letters again at another batch size (same predictions at every batch size).
[[ $ROWS == *eval* ]] && row eval-letters-b8 45 $EVAL --tasks medqa,medmcqa --batch-size 8 --json "$OUT/eval-letters-b8.json"
echo "done after $SECONDS s" | tee -a "$LOG"
