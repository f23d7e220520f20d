#!/usr/bin/env bash
# Compares two Herald builds on P4 (b, ahead), or (b), under the same noise
# (benches/README.md, P4 session 10): each round runs both builds' bursts
# at once, each with its own redis-server and daemon and the same due
# instant, and prints NEW's throughput over OLD's; rounds alternate which
# starts first. A machine whose speed swings between runs cannot resolve
# a 10 % change run after run; both halves of a pair share the swing.
#
#   benches/p4_paired.sh OLD_DIR NEW_DIR [ROUNDS] [N]
#
# Each folder holds one build's `herald`, `p4_burst` and
# `libherald_test_count.so` (p4_burst runs the herald beside it), e.g.
#   cargo build --release -p herald --bins -p herald-benches
#   cargo build --release -p herald_test_count
#   mkdir -p /tmp/new && cp target/release/{herald,p4_burst,libherald_test_count.so} /tmp/new/
# Defaults: ROUNDS 3 (six pairs), N 10000 deliveries per build.
# CASE=b compares case (b) instead (runs created and prepared at the
# instant).
set -euo pipefail
case_=${CASE:-ahead}

old=${1:?usage: p4_paired.sh OLD_DIR NEW_DIR [ROUNDS] [N]}
new=${2:?usage: p4_paired.sh OLD_DIR NEW_DIR [ROUNDS] [N]}
rounds=${3:-3}
n=${4:-10000}
for dir in "$old" "$new"; do
    for file in herald p4_burst libherald_test_count.so; do
        [ -e "$dir/$file" ] || { echo "$dir/$file is missing" >&2; exit 1; }
    done
done

# One build's burst: "RUNS_PER_S LAG_P50_MS".
burst() {
    P4_CASES=$case_ "$1/p4_burst" "$n" 100 20 2>&1 |
        sed -nE 's/.*deliveries, ([0-9]+)\/s, lag p50 ([0-9]+) ms.*/\1 \2/p'
}

ratios=()
for _ in $(seq "$rounds"); do
    for first in old new; do
        a=$(mktemp) b=$(mktemp)
        if [ $first = old ]; then
            burst "$old" >"$a" & burst "$new" >"$b" &
        else
            burst "$new" >"$b" & burst "$old" >"$a" &
        fi
        wait
        read -r old_rate old_p50 <"$a"
        read -r new_rate new_p50 <"$b"
        rm -f "$a" "$b"
        ratio=$(awk -v a="$new_rate" -v b="$old_rate" 'BEGIN {printf "%.3f", a / b}')
        ratios+=("$ratio")
        echo "$first first: old $old_rate runs/s (p50 $old_p50 ms), new $new_rate runs/s (p50 $new_p50 ms), new / old $ratio"
    done
done
echo "median new / old: $(printf '%s\n' "${ratios[@]}" | sort -n |
    awk '{v[NR] = $1} END {printf "%.3f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')"
