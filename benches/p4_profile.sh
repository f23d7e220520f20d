#!/usr/bin/env bash
# What one P4 (b) run costs Redis and the daemon at the due instant
# (benches/README.md, P4 sessions 6 to 8).
#
#   benches/p4_profile.sh              # case (b, ahead), 20,000 deliveries
#   CASE=b N=5000 benches/p4_profile.sh
#   CASE=bullmq benches/p4_profile.sh  # the peer, measured the same way
#
# Runs target/release/p4_burst for one case (build it first:
# `cargo build --release -p herald --bins -p herald_test_count -p herald-benches`).
# Half a second before the due instant it resets the private Redis's
# `INFO commandstats` and reads both processes' CPU time from /proc; when
# every run is finished (p4_burst prints its line) it reads them again. Prints p4_burst's line, the
# CPU per run of Redis and of the daemon, and Redis's commands by time.
# CASE=bullmq measures BullMQ's jobs the same way (benches/README.md, P4
# session 15): its script (set up by benches/peers.sh) against a private
# `redis-server` configured as p4_burst's, Node.js in place of the daemon.
# Knobs: CASE (ahead | b | bullmq, default ahead), N (20000), LEAD_S (20).
set -euo pipefail

cd "$(dirname "$0")/.."
CASE=${CASE:-ahead}
N=${N:-20000}
LEAD_S=${LEAD_S:-20}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
per_run() { echo "scale=1; ($2 - $1) * 1000000 / $hz / $N" | bc; }
commands() {
    echo "Redis commands (calls, µs in all, µs per call); EVALSHA includes the commands its scripts run:"
    echo "$1" | grep '^cmdstat_' | grep -v 'resetstat' |
        sed -E 's/^cmdstat_([^:]*):calls=([0-9]*),usec=([0-9]*),usec_per_call=([0-9.]*).*/\3 \1 \2 \4/' |
        sort -rn | awk '{printf "  %-18s %9d calls %10d µs %8.2f µs/call\n", $2, $3, $1, $4}'
}

if [ "$CASE" = bullmq ]; then
    script=${PEERS_DIR:-$TARGET/peers}/bullmq/bullmq_burst.mjs
    [ -f "$script" ] || { echo "$script is missing: run benches/peers.sh once first" >&2; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    dir=$(mktemp -d)
    trap 'kill "$redis_pid" 2>/dev/null; rm -rf "$out" "$dir"' EXIT
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly yes --dir "$dir" \
        --daemonize no --loglevel warning >/dev/null &
    redis_pid=$!
    until redis-cli -p "$port" PING >/dev/null 2>&1; do sleep 0.05; done
    (cd "$(dirname "$script")" && exec node "$script" "$port" "$N" 100 "$((LEAD_S * 1000))") >"$out" 2>&1 &
    node_pid=$!
    sleep "$(echo "$LEAD_S - 0.5" | bc -l)"
    redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
    r0=$(ticks "$redis_pid")
    n0=$(ticks "$node_pid")
    r1=$r0 n1=$n0 stats=
    while kill -0 "$node_pid" 2>/dev/null; do
        r=$(ticks "$redis_pid") && n=$(ticks "$node_pid" 2>/dev/null) &&
            s=$(redis-cli -p "$port" INFO commandstats 2>/dev/null) && r1=$r n1=$n stats=$s
        sleep 0.02
    done
    grep RESULT "$out" || { cat "$out"; exit 1; }
    echo "CPU per job from 0.5 s before the instant to every job completed:" \
        "Redis $(per_run "$r0" "$r1") µs, Node.js $(per_run "$n0" "$n1") µs"
    commands "$stats"
    exit 0
fi

P4_CASES=$CASE "$TARGET/release/p4_burst" "$N" 100 "$LEAD_S" >"$out" 2>&1 &
bench=$!
until grep -q "before the due instant" "$out"; do
    kill -0 "$bench" 2>/dev/null || { cat "$out"; exit 1; }
    sleep 0.1
done
spare_ms=$(grep -o '[0-9]* ms before the due instant' "$out" | awk '{print $1}')
sleep "$(echo "($spare_ms - 500) / 1000" | bc -l)"

# The bench's own redis-server (the newest one: not a Redis this machine
# runs for other purposes) and daemon.
redis_pid=$(pgrep -n -f '^redis-server 127.0.0.1:')
port=$(ps -o args= -p "$redis_pid" | grep -o '127.0.0.1:[0-9]*' | cut -d: -f2)
herald_pid=$(pgrep -f "$TARGET/release/herald run" | head -1)

redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
r0=$(ticks "$redis_pid")
h0=$(ticks "$herald_pid")
# The bench stops both processes soon after its line: the last readings
# taken while they ran stand for the end (at most 20 ms early).
r1=$r0 h1=$h0 stats=
until grep -q "deliveries, " "$out"; do
    r=$(ticks "$redis_pid" 2>/dev/null) && h=$(ticks "$herald_pid" 2>/dev/null) &&
        s=$(redis-cli -p "$port" INFO commandstats 2>/dev/null) && r1=$r h1=$h stats=$s
    sleep 0.02
done
wait "$bench"

grep "deliveries, " "$out"
echo "CPU per run from 0.5 s before the instant to every run finished:" \
    "Redis $(per_run "$r0" "$r1") µs, daemon $(per_run "$h0" "$h1") µs"
commands "$stats"
