#!/usr/bin/env bash
# Every GPU row of benchmarks/RESULTS.md (issue #19) in one device call, plain TRL / stock lm-eval side by side with
# medbench in each row. Prepare the wheels and tokenizer the device machine lacks, here, once:
#   .venv/bin/python benchmarks/gpu/prepare_carry.py
# then on the device machine (the `device` tool's run, from the repository root), the rows split over two calls
# (one call runs 10 minutes at most and returns 8 files):
#   run(command="ROWS='dpo-lora sft-lora-ckpt sft-full-b32 eval-letters-1k' bash benchmarks/gpu/run_rows.sh",
#       carry=[".gpu-carry"], timeout_s=595)
#   run(command="ROWS='eval-texts-1k sft-lora sft-full' bash benchmarks/gpu/run_rows.sh", carry=[".gpu-carry"],
#       timeout_s=400)
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
# The carried SmolLM2 tokenizer; where it is absent (the plumbing check before prepare_carry.py) the benchmarks use
# their own default (the embedded model's, or a byte-level one for the tiny shape).
TOK=${TOK:-.gpu-carry/smollm2-tokenizer}
TOK_ARG=""
[ -d "$TOK" ] && TOK_ARG="--tokenizer $TOK"
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

# ROWS: the rows to run, by name, in this order (default: all, the ones not measured on 2026-12-04 first).
ROWS=${ROWS:-dpo-lora sft-lora-ckpt sft-full-b32 eval-letters-1k eval-texts-1k sft-lora sft-full eval-letters eval-texts eval-letters-b8}
TRAIN="$PY benchmarks/bench_train.py --shape $SHAPE $TOK_ARG --device $DEVICE --steps $STEPS --warmup-steps $WARMUP"
EVAL="$PY benchmarks/bench_eval.py --shape $SHAPE $TOK_ARG --device $DEVICE --repeats 2"
for name in $ROWS; do
  case $name in
    sft-lora) row $name 120 $TRAIN --trainer sft --method lora --json "$OUT/$name.json" ;;
    dpo-lora) row $name 170 $TRAIN --trainer dpo --method lora --json "$OUT/$name.json" ;;
    sft-full) row $name 150 $TRAIN --trainer sft --method full --json "$OUT/$name.json" ;;
    # Both sides checkpointing activations: the 2026-12-04 LoRA speed-up was the checkpointing medbench turns off
    # on a GPU (1.36x at 3.0x the memory); this row is the same-memory comparison.
    sft-lora-ckpt) row $name 120 $TRAIN --trainer sft --method lora --medbench-option gradient_checkpointing=on \
        --json "$OUT/$name.json" ;;
    # Four times the tokens per step (both sides): how far MFU moves once the GPU is fed more per launch.
    sft-full-b32) row $name 150 $TRAIN --trainer sft --method full --batch-size 32 --json "$OUT/$name.json" ;;
    # The anchors' synthetic MCQs at their scale (1,000 items), both at batch auto as the targets say (each
    # searches up to 64); --floor: the decoder alone at batch 64, the ceiling.
    eval-letters-1k) row $name 100 $EVAL --synthetic letters --items 1000 --batch-size auto --floor \
        --json "$OUT/$name.json" ;;
    eval-texts-1k) row $name 100 $EVAL --synthetic texts --items 1000 --batch-size auto --floor \
        --json "$OUT/$name.json" ;;
    # The bundled tasks' own prompts (240 letter items at most in their splits), at two batch sizes
    eval-letters) row $name 70 $EVAL --items 256 --tasks medqa,medmcqa --batch-size 32 --json "$OUT/$name.json" ;;
    eval-texts) row $name 70 $EVAL --items 256 --tasks triage_personnel,hyponatremia --batch-size 32 \
        --json "$OUT/$name.json" ;;
    eval-letters-b8) row $name 45 $EVAL --items 256 --tasks medqa,medmcqa --batch-size 8 --json "$OUT/$name.json" ;;
    *) echo "unknown row $name" | tee -a "$LOG" ;;
  esac
done
echo "done after $SECONDS s" | tee -a "$LOG"
