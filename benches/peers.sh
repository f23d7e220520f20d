#!/usr/bin/env bash
# Herald against its peers (guarantees P2 and P4; results in benches/README.md).
#
#   benches/peers.sh            # from anywhere; needs apt-get, dpkg, npm, Node.js 20, redis-server
#
# Sets up the peers from the package registries, without installing them:
# - Postfix's smtp-sink and smtp-source from Debian's `postfix` package,
#   fetched with `apt-get download` and unpacked with `dpkg -x` (plus any
#   library package of its that this machine lacks);
# - BullMQ 6 (and ioredis) from npm;
# both under $PEERS_DIR (default target/peers). Builds the daemon, the two
# plugins and the two benchmark programs in release mode, runs P2
# (p2_smtp) and P4 (p4_burst) and prints one table.
#
# Knobs (environment): N (messages or jobs, 20000), SIZE (P2 message body
# bytes, 1000), C (P2 concurrency: smtp-source sessions and Herald's
# pool_size, 4), BULLMQ_CONCURRENCY (100), LEAD_S (P4 (b): seconds from
# writing the N delivery files to their due instant, 30).
set -euo pipefail

cd "$(dirname "$0")/.."
N=${N:-20000}
SIZE=${SIZE:-1000}
C=${C:-4}
BULLMQ_CONCURRENCY=${BULLMQ_CONCURRENCY:-100}
LEAD_S=${LEAD_S:-30}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
PEERS_DIR=${PEERS_DIR:-$TARGET/peers}
mkdir -p "$PEERS_DIR"
PEERS_DIR=$(cd "$PEERS_DIR" && pwd)

say() { printf '== %s\n' "$*" >&2; }

# --- Postfix: smtp-sink and smtp-source, unpacked, not installed ---------
POSTFIX=$PEERS_DIR/postfix
if [ ! -x "$POSTFIX/usr/sbin/smtp-sink" ]; then
    say "fetching Debian's postfix package into $PEERS_DIR"
    (cd "$PEERS_DIR" && rm -f postfix_*.deb &&
        apt-get download postfix >&2) || {
        echo "apt-get download postfix failed; run 'apt-get update' and retry" >&2
        exit 1
    }
    dpkg -x "$PEERS_DIR"/postfix_*.deb "$POSTFIX"
fi
LIBS=$POSTFIX/usr/lib/postfix
missing() {
    LD_LIBRARY_PATH=$LIBS ldd "$POSTFIX/usr/sbin/smtp-sink" "$POSTFIX/usr/sbin/smtp-source" |
        grep 'not found' || true
}
if [ -n "$(missing)" ]; then
    # Libraries postfix links (libicu, libdb, libnsl, ...) that this
    # machine lacks come from postfix's own library dependencies, unpacked
    # beside it.
    say "postfix needs libraries this machine lacks:"
    missing >&2
    deps=$(dpkg-deb -f "$PEERS_DIR"/postfix_*.deb Depends | tr ',' '\n' |
        sed -e 's/|.*//' -e 's/(.*//' -e 's/ //g' | grep '^lib' || true)
    mkdir -p "$PEERS_DIR/libs"
    for dep in $deps; do
        (cd "$PEERS_DIR/libs" && apt-get download "$dep" >&2) || true
    done
    for deb in "$PEERS_DIR"/libs/*.deb; do
        dpkg -x "$deb" "$PEERS_DIR/libs/root"
    done
    for dir in $(find "$PEERS_DIR/libs/root" -name '*.so*' -printf '%h\n' | sort -u); do
        LIBS=$LIBS:$dir
    done
    if [ -n "$(missing)" ]; then
        echo "still missing after unpacking postfix's library packages:" >&2
        missing >&2
        exit 1
    fi
fi

# --- BullMQ from npm ------------------------------------------------------
BULLMQ=$PEERS_DIR/bullmq
if [ ! -d "$BULLMQ/node_modules/bullmq" ] || [ ! -d "$BULLMQ/node_modules/ioredis" ]; then
    say "installing bullmq 6 and ioredis from npm into $BULLMQ"
    mkdir -p "$BULLMQ"
    echo '{ "private": true }' >"$BULLMQ/package.json"
    (cd "$BULLMQ" && npm install --no-audit --no-fund --loglevel=error bullmq@6 ioredis@5 >&2)
fi
# Node resolves `bullmq` from the script's own folder.
cp benches/peers/bullmq_burst.mjs "$BULLMQ/"

# --- Herald, release -------------------------------------------------------
say "building herald, herald_email, herald_test_count and the benchmarks (release)"
cargo build --release --locked -p herald -p herald_email -p herald_test_count >&2
cargo build --release --locked -p herald-benches --bin p2_smtp --bin p4_burst >&2

# --- Runs, peer then Herald, back to back -----------------------------------
say "P2: smtp-source and Herald into smtp-sink ($N messages, $SIZE bytes, concurrency $C)"
P2=$(LD_LIBRARY_PATH=$LIBS \
    SMTP_SINK=$POSTFIX/usr/sbin/smtp-sink SMTP_SOURCE=$POSTFIX/usr/sbin/smtp-source \
    "$TARGET/release/p2_smtp" "$N" "$SIZE" "$C" | tee -a /dev/stderr)
say "P4: BullMQ and Herald, $N jobs due at one instant"
P4=$(BULLMQ_SCRIPT=$BULLMQ/bullmq_burst.mjs \
    "$TARGET/release/p4_burst" "$N" "$BULLMQ_CONCURRENCY" "$LEAD_S" | tee -a /dev/stderr)

echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| check | system | workload | throughput | lag p50 | lag p99 | verdict |"
echo "| --- | --- | --- | ---: | ---: | ---: | --- |"
printf '%s\n%s\n' "$P2" "$P4" | grep '^| P'
