#!/usr/bin/env bash
# Fine-tunes all-MiniLM-L6-v2 on the full Banking77 train set (10003
# records, 77 intents) with and without the seq2seq task. Each run is
# evaluated on the whole test set (3080 records) after every epoch. Prints
# test accuracy, macro-F1, wall time and training samples/s as a Markdown
# table.
#
# Usage: bench/banking77_minilm.sh [EPOCHS] [DATA_DIR]
# EPOCHS defaults to 3 and DATA_DIR to ../shared/data/banking77. The
# checkpoint comes from scripts/fetch-test-models.sh. The server runs on a
# free port on 127.0.0.1 with a temporary store and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

epochs=${1:-3}
data=${2:-../shared/data/banking77}
scripts/fetch-test-models.sh
model_root=$(pwd)/.cache/models
serve_flags=(--model-root "$model_root")
source bench/server.sh

common=(--train "$data/train.csv" --eval "$data/test.csv"
    --format csv --label-field category --encoder "$model_root/all-MiniLM-L6-v2"
    --epochs "$epochs" --batch-size 32 --lr 1e-4 --max-len 64 --max-description-len 8 --seed 7)

echo "| tasks | test accuracy | test macro-F1 | best epoch | wall time (s) | training samples/s |"
echo "|---|---|---|---|---|---|"
for tasks in "" "seq2seq=0.2"; do
    train_row "${tasks:-none}" "${common[@]}" ${tasks:+--tasks "$tasks"}
done
