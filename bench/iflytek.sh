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

common=(--train "$data/train.json" --eval "$data/dev.json"
    --format clue --description-field label_des --epochs 20 --batch-size 32 --lr 5e-3
    --max-len 64 --max-description-len 8 --layers 1 --hidden-size 64 --heads 2
    --vocab-size 6000 --seed 7 "$@")

echo "| tasks | dev accuracy | dev macro-F1 | best epoch | wall time (s) | training samples/s |"
echo "|---|---|---|---|---|---|"
for tasks in "" "seq2seq=0.2"; do
    train_row "${tasks:-none}" "${common[@]}" ${tasks:+--tasks "$tasks"}
done
