#!/usr/bin/env bash
# Ablation of the label-augmentation tasks. The script trains the same
# encoder with no auxiliary task, with each task alone, with a pair and with
# all tasks together, over several seeds. It prints a Markdown table of mean
# ± standard deviation of accuracy and macro-F1, wall time and training
# samples/s.
#
# Usage: bench/ablation.sh DATA_SET [SEEDS...]   (default seeds 1 2 3)
#
# DATA_SET is one of
#   tnews, iflytek     FewCLUE few-shot splits, a small encoder from scratch
#                      (1 layer, hidden size 64); accuracy of the best
#                      epoch on dev.json;
#   banking77-K        K training records per intent drawn with seed 0 from
#                      Banking77 train.csv, all-MiniLM-L6-v2 fine-tuned; the
#                      final model classifies the whole test.csv through
#                      Classify (no epoch is chosen on the test set).
# The `distill` teacher is trained first on the same training file with seed
# 100, and its row comes first. For tnews and iflytek it is a larger encoder
# (2 layers, hidden size 128, learning rate 1e-3) trained with the seq2seq
# task. For banking77-K it is MiniLM trained with the seq2seq task.
#
# Environment:
#   LABELAUG_EPOCHS    epochs per run (default 20 for tnews and iflytek, 5 for
#                      banking77-K);
#   LABELAUG_CONFIGS   names of the configurations to run, separated by
#                      spaces (default: every configuration);
#   LABELAUG_DATA      the data folder (default ../shared/data).
# The server runs on a free port on 127.0.0.1 with a temporary store.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: bench/ablation.sh tnews|iflytek|banking77-K [SEEDS...]"
dataset=${1:?$usage}
shift
if [ $# -gt 0 ]; then seeds=("$@"); else seeds=(1 2 3); fi
data=${LABELAUG_DATA:-../shared/data}
serve_flags=()

case "$dataset" in
    tnews | iflytek)
        if [ "$dataset" = tnews ]; then
            files=(--train "$data/tnews/train.json" --eval "$data/tnews/dev.json" --format clue
                --label-descriptions "$data/tnews/labels.json" --label-descriptions-field label_desc
                --max-len 40 --vocab-size 5000)
        else
            files=(--train "$data/iflytek/train.json" --eval "$data/iflytek/dev.json" --format clue
                --description-field label_des --max-len 64 --vocab-size 6000)
        fi
        epochs=${LABELAUG_EPOCHS:-20}
        common=(--epochs "$epochs" --batch-size 32 --max-description-len 8)
        model=(--layers 1 --hidden-size 64 --heads 2 --lr 5e-3 "${common[@]}")
        teacher_name="teacher (2 layers, hidden 128, seq2seq)"
        teacher_model=(--layers 2 --hidden-size 128 --heads 2 --lr 1e-3 "${common[@]}" --tasks seq2seq=0.2)
        ;;
    banking77-[1-9]*)
        per_class=${dataset#banking77-}
        if [[ ! "$per_class" =~ ^[0-9]+$ ]]; then
            echo "invalid data set $dataset: K must be a whole number of records per intent" >&2
            exit 2
        fi
        scripts/fetch-test-models.sh
        model_root=$(pwd)/.cache/models
        serve_flags=(--model-root "$model_root")
        epochs=${LABELAUG_EPOCHS:-5}
        model=(--epochs "$epochs" --batch-size 16 --lr 2e-4 --max-description-len 8)
        teacher_name="teacher (MiniLM, seq2seq)"
        teacher_model=("${model[@]}" --tasks seq2seq=0.2)
        ;;
    *)
        echo "unknown data set $dataset" >&2
        echo "$usage" >&2
        exit 2
        ;;
esac

source bench/server.sh

if [ -n "${per_class:-}" ]; then
    python3 - "$data/banking77/train.csv" "$per_class" "$scratch/train.csv" <<'PY'
import csv, random, sys
source, per_class, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(source, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
by_label = {}
for row in rows:
    by_label.setdefault(row["category"], []).append(row)
rng = random.Random(0)
chosen = []
for label in sorted(by_label):
    group = by_label[label]
    if len(group) < per_class:
        sys.exit(f"{source}: intent {label} has {len(group)} records, fewer than {per_class}")
    chosen.extend(rng.sample(group, per_class))
rng.shuffle(chosen)
with open(target, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=["text", "category"])
    writer.writeheader()
    writer.writerows(chosen)
PY
    files=(--train "$scratch/train.csv" --format csv --label-field category
        --encoder "$model_root/all-MiniLM-L6-v2" --max-len 64)
    test_file="$data/banking77/test.csv"
fi

results="$scratch/results.jsonl"
record() {
    python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(json.dumps({"config": sys.argv[2], "seed": int(sys.argv[3]), "accuracy": j["accuracy"], "macro_f1": j["macro_f1"], "wall": float(sys.argv[5]) - float(sys.argv[4]), "samples_per_second": j["samples_per_second"]}))' \
        "$@" >> "$results"
}

# Trains with ARGS and prints the job's JSON. With `test_file` set, the
# final model classifies every record of that CSV through Classify, and the
# accuracy and macro-F1 printed are those on it.
train() {
    local json
    json=$("$binary" train --server "http://127.0.0.1:$port" "${files[@]}" "$@" --wait --json 2>/dev/null)
    if [ -z "${test_file:-}" ]; then
        echo "$json"
        return
    fi
    python3 - "$json" "$test_file" "$binary" "http://127.0.0.1:$port" <<'PY'
import csv, json, subprocess, sys
job = json.loads(sys.argv[1])
test_file, binary, server = sys.argv[2:5]
with open(test_file, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
gold = [row["category"] for row in rows]
predicted = []
for start in range(0, len(rows), 256):
    texts = [row["text"] for row in rows[start:start + 256]]
    command = [binary, "classify", "--server", server, "--model", job["model_id"], "--json", "--", *texts]
    answer = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    predicted.extend(result["labels"][0]["label"] for result in answer["results"])
f1 = []
for label in set(gold) | set(predicted):
    hits = sum(g == p == label for g, p in zip(gold, predicted))
    f1.append(2 * hits / (gold.count(label) + predicted.count(label)))
job["accuracy"] = sum(g == p for g, p in zip(gold, predicted)) / len(gold)
job["macro_f1"] = sum(f1) / len(f1)
print(json.dumps(job))
PY
}

configs=(
    "plain|"
    "seq2seq|seq2seq=0.2"
    "similarity|similarity=0.5"
    "similarity_masked|similarity_masked=0.5"
    "description_records|description_records=1"
    "mlm|mlm=0.5"
    "self_distill|self_distill=0.5:T=2"
    "distill|distill=1:T=2:teacher=TEACHER"
    "seq2seq+self_distill|seq2seq=0.2,self_distill=0.5:T=2"
    "all|seq2seq=0.2,similarity_masked=0.5,description_records=1,mlm=0.5,self_distill=0.5:T=2,distill=1:T=2:teacher=TEACHER"
)
if [ -n "${LABELAUG_CONFIGS:-}" ]; then
    chosen=()
    for name in $LABELAUG_CONFIGS; do
        found=
        for entry in "${configs[@]}"; do
            if [ "${entry%%|*}" = "$name" ]; then
                chosen+=("$entry")
                found=1
            fi
        done
        if [ -z "$found" ]; then
            echo "unknown configuration $name in LABELAUG_CONFIGS; expected one of: ${configs[*]%%|*}" >&2
            exit 2
        fi
    done
    configs=("${chosen[@]}")
fi

if [[ "${configs[*]}" == *teacher=TEACHER* ]]; then
    started=$(date +%s.%N)
    teacher_json=$(train "${teacher_model[@]}" --seed 100)
    record "$teacher_json" "$teacher_name" 100 "$started" "$(date +%s.%N)"
    teacher=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["model_id"])' "$teacher_json")
    echo "done: teacher $teacher" >&2
fi

for entry in "${configs[@]}"; do
    name=${entry%%|*}
    tasks=${entry#*|}
    tasks=${tasks//teacher=TEACHER/teacher=${teacher:-}}
    for seed in "${seeds[@]}"; do
        started=$(date +%s.%N)
        json=$(train "${model[@]}" --seed "$seed" ${tasks:+--tasks "$tasks"})
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
print("| configuration | seeds | accuracy (%) | macro-F1 (%) | wall time (s) | training samples/s |")
print("|---|---|---|---|---|---|")
for config in order:
    group = [r for r in rows if r["config"] == config]
    print(f"| {config} | {len(group)} | {spread([r['accuracy'] for r in group])} | "
          f"{spread([r['macro_f1'] for r in group])} | {statistics.mean(r['wall'] for r in group):.0f} | "
          f"{statistics.mean(r['samples_per_second'] for r in group):.0f} |")
PY
