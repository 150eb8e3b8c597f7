#!/usr/bin/env bash
# Ablation of the label-augmentation tasks: trains the same small
# from-scratch encoder with no auxiliary task, each task alone, a pair and
# all tasks together, over several seeds, and prints a Markdown table of
# mean ± standard deviation of dev accuracy and macro-F1, wall time and
# training samples/s. The `distill` teacher is a larger encoder (2 layers,
# hidden size 128) trained first on the same data; its own row comes first.
#
# Usage: bench/ablation.sh tnews|iflytek [SEEDS...]   (default seeds 1 2 3)
# Data comes from ../shared/data (override with LABELAUG_DATA). The server
# runs on a free port on 127.0.0.1 with a temporary store.
set -euo pipefail
cd "$(dirname "$0")/.."

dataset=${1:?usage: bench/ablation.sh tnews|iflytek [SEEDS...]}
shift
if [ $# -gt 0 ]; then seeds=("$@"); else seeds=(1 2 3); fi
data=${LABELAUG_DATA:-../shared/data}

case "$dataset" in
    tnews)
        files=(--train "$data/tnews/train.json" --eval "$data/tnews/dev.json" --format clue
            --label-descriptions "$data/tnews/labels.json" --label-descriptions-field label_desc
            --max-len 40 --vocab-size 5000)
        ;;
    iflytek)
        files=(--train "$data/iflytek/train.json" --eval "$data/iflytek/dev.json" --format clue
            --description-field label_des --max-len 64 --vocab-size 6000)
        ;;
    *)
        echo "unknown data set $dataset; expected tnews or iflytek" >&2
        exit 2
        ;;
esac
epochs=${LABELAUG_EPOCHS:-20}
training=(--epochs "$epochs" --batch-size 32 --lr 5e-3 --max-description-len 8)
model=(--layers 1 --hidden-size 64 --heads 2 "${training[@]}")

source bench/server.sh

results=$(mktemp)
record() {
    python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(json.dumps({"config": sys.argv[2], "seed": int(sys.argv[3]), "accuracy": j["accuracy"], "macro_f1": j["macro_f1"], "wall": float(sys.argv[5]) - float(sys.argv[4]), "samples_per_second": j["samples_per_second"]}))' \
        "$@" >> "$results"
}

started=$(date +%s.%N)
teacher_json=$("$binary" train --server "http://127.0.0.1:$port" "${files[@]}" --layers 2 --hidden-size 128 \
    --heads 2 "${training[@]}" --seed 100 --wait --json 2>/dev/null)
record "$teacher_json" "teacher (2 layers, hidden 128)" 100 "$started" "$(date +%s.%N)"
teacher=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["model_id"])' "$teacher_json")
echo "done: teacher $teacher" >&2

configs=(
    "plain|"
    "seq2seq|seq2seq=0.2"
    "similarity|similarity=0.5"
    "similarity_masked|similarity_masked=0.5"
    "description_records|description_records=1"
    "mlm|mlm=0.5"
    "self_distill|self_distill=0.5:T=2"
    "distill|distill=1:T=2:teacher=$teacher"
    "seq2seq + self_distill|seq2seq=0.2,self_distill=0.5:T=2"
    "all|seq2seq=0.2,similarity_masked=0.5,description_records=1,mlm=0.5,self_distill=0.5:T=2,distill=1:T=2:teacher=$teacher"
)

for entry in "${configs[@]}"; do
    name=${entry%%|*}
    tasks=${entry#*|}
    for seed in "${seeds[@]}"; do
        started=$(date +%s.%N)
        json=$("$binary" train --server "http://127.0.0.1:$port" "${files[@]}" "${model[@]}" --seed "$seed" \
            ${tasks:+--tasks "$tasks"} --wait --json 2>/dev/null)
        record "$json" "$name" "$seed" "$started" "$(date +%s.%N)"
        echo "done: $name seed $seed" >&2
    done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
order = []
for row in rows:
    if row["config"] not in order:
        order.append(row["config"])
def spread(values):
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.2f} ± {100 * std:.2f}"
print("| configuration | seeds | dev accuracy (%) | dev macro-F1 (%) | wall time (s) | training samples/s |")
print("|---|---|---|---|---|---|")
for config in order:
    group = [r for r in rows if r["config"] == config]
    print(f"| {config} | {len(group)} | {spread([r['accuracy'] for r in group])} | "
          f"{spread([r['macro_f1'] for r in group])} | {statistics.mean(r['wall'] for r in group):.0f} | "
          f"{statistics.mean(r['samples_per_second'] for r in group):.0f} |")
PY
