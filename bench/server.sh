# Starts a release `labelaug serve` on a free port on 127.0.0.1 with a
# temporary store, for the benchmark scripts; source it from bash. Extra
# server flags come from the array `serve_flags` when the script sets it.
# Sets `binary`, `port` and `store`, and stops the server and removes the
# store when the script exits.

cargo build --release --quiet
serve_flags=("${serve_flags[@]+"${serve_flags[@]}"}")
binary=target/release/labelaug
store=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
"$binary" serve --listen "127.0.0.1:$port" --data-dir "$store" "${serve_flags[@]}" > "$store/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$store"' EXIT
for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.2
done
