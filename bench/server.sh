# Starts a release `labelaug serve` on a free port on 127.0.0.1 with a
# temporary store, for the benchmark scripts; source it from bash. Extra
# server flags come from the array `serve_flags` when the script sets it.
# Sets `binary`, `port`, `store` and `scratch` (an empty folder for the
# script's own files), and stops the server and removes both folders when
# the script exits.

cargo build --release --quiet
serve_flags=("${serve_flags[@]+"${serve_flags[@]}"}")
binary=target/release/labelaug
store=$(mktemp -d)
scratch=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
"$binary" serve --listen "127.0.0.1:$port" --data-dir "$store" "${serve_flags[@]}" > "$store/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$store" "$scratch"' EXIT
for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.2
done

# Trains with `labelaug train ARGS... --wait --json` against the server and
# prints one Markdown row: LABEL, accuracy, macro-F1, best epoch, wall time
# and training samples/s. Usage: train_row LABEL ARGS...
train_row() {
    local label=$1
    shift
    local started ended result
    started=$(date +%s.%N)
    result=$("$binary" train --server "http://127.0.0.1:$port" "$@" --wait --json 2>/dev/null)
    ended=$(date +%s.%N)
    python3 - "$result" "$label" "$started" "$ended" <<'PY'
import json, sys
job = json.loads(sys.argv[1])
wall = float(sys.argv[4]) - float(sys.argv[3])
print(f"| {sys.argv[2]} | {100 * job['accuracy']:.2f}% | {100 * job['macro_f1']:.2f}% | "
      f"{job['best_epoch']} | {wall:.0f} | {job['samples_per_second']:.1f} |")
PY
}
