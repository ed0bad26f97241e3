#!/usr/bin/env bash
# `make demo`: the main job on the embedded model and bundled data, offline, on CPU.
# Score the base model on hyponatremia, LoRA-SFT it on its training split, DPO the SFT checkpoint on task-built pairs
# (a wrong label rejected), score every checkpoint, render the leaderboard with paired tests against base.
# Everything goes to $DEMO_DIR (default runs/demo, ignored by git); each step's wall time is printed at the end.
set -euo pipefail
MEDBENCH=${MEDBENCH:-.venv/bin/medbench}
DEMO_DIR=${DEMO_DIR:-runs/demo}
TASK=${DEMO_TASK:-hyponatremia}
SFT_STEPS=${DEMO_SFT_STEPS:-24}
DPO_STEPS=${DEMO_DPO_STEPS:-12}
export HF_HUB_OFFLINE=1
board="$DEMO_DIR/leaderboard"
rm -rf "$DEMO_DIR"
steps=()
run() {  # run NAME COMMAND...: time one step, keep its wall time for the summary
    local name=$1 start end
    shift
    echo ">> $name: $*"
    start=$(date +%s)
    "$@"
    end=$(date +%s)
    steps+=("$name $((end - start))")
}
run "score base" "$MEDBENCH" eval --tasks "$TASK" --output-dir "$board" --label base
run "SFT ($SFT_STEPS steps) + score" "$MEDBENCH" train --plugin sft --task "$TASK" --output-dir "$DEMO_DIR" \
    --leaderboard-dir "$board" --run-name sft --max-steps "$SFT_STEPS" --learning-rate 5e-4
run "DPO from SFT ($DPO_STEPS steps) + score" "$MEDBENCH" train --plugin dpo --task "$TASK" \
    --model "$DEMO_DIR/sft/checkpoint-$SFT_STEPS" --output-dir "$DEMO_DIR" --leaderboard-dir "$board" \
    --run-name dpo --max-steps "$DPO_STEPS"
run "leaderboard" "$MEDBENCH" leaderboard --dir "$board" --baseline base
echo
echo "demo steps (wall seconds):"
total=0
for entry in "${steps[@]}"; do
    seconds=${entry##* }
    total=$((total + seconds))
    printf '  %-40s %5s s\n' "${entry% *}" "$seconds"
done
printf '  %-40s %5s s\n' "total" "$total"
echo "page: $board/index.html"
