#!/usr/bin/env bash
# Trains the small from-scratch encoder on the full IFLYTEK few-shot train
# set with and without the seq2seq task, and prints dev accuracy, macro-F1,
# wall time and training samples/s as a Markdown table.
#
# Usage: bench/iflytek.sh [DATA_DIR] [extra `labelaug train` flags...]
# DATA_DIR defaults to ../shared/data/iflytek. The server runs on a free
# port on 127.0.0.1 with a temporary store and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

data=${1:-../shared/data/iflytek}
shift || true
source bench/server.sh

common=(--server "http://127.0.0.1:$port" --train "$data/train.json" --eval "$data/dev.json"
    --format clue --description-field label_des --epochs 20 --batch-size 32 --lr 5e-3
    --max-len 64 --max-description-len 8 --layers 1 --hidden-size 64 --heads 2
    --vocab-size 6000 --seed 7 "$@")

echo "| tasks | dev accuracy | dev macro-F1 | best epoch | wall time (s) | training samples/s |"
echo "|---|---|---|---|---|---|"
for tasks in "" "seq2seq=0.2"; do
    started=$(date +%s.%N)
    result=$("$binary" train "${common[@]}" ${tasks:+--tasks "$tasks"} --wait --json 2>/dev/null)
    ended=$(date +%s.%N)
    python3 - "$result" "${tasks:-none}" "$started" "$ended" <<'PY'
import json, sys
job = json.loads(sys.argv[1])
wall = float(sys.argv[4]) - float(sys.argv[3])
print(f"| {sys.argv[2]} | {100 * job['accuracy']:.2f}% | {100 * job['macro_f1']:.2f}% | "
      f"{job['best_epoch']} | {wall:.0f} | {job['samples_per_second']:.0f} |")
PY
done
