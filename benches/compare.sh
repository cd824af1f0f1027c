#!/usr/bin/env bash
# Speed comparison on the same file, from the page cache:
#
#   raw read     cat FILE > /dev/null
#   streamscope  streamscope analyze FILE -o OUT --quiet
#   tshark       tshark -n -q -r FILE -z conv,tcp -z conv,udp > /dev/null
#
# on the three benchmark captures made by capgen from tools/capgen/scenarios/:
# bench-streaming.toml (the streaming mix, with something for every inspector),
# bench-iptv-https.toml (the mix the targets were first set on: multicast TS and HTTPS
# without handshakes, where tshark has the least to dissect) and bench-flows.toml (a
# million flows). Prints, per capture, the median wall time, MB/s (10^6 bytes of
# file per second), the median CPU time (user + system, all threads), the ratios
# streamscope/raw-read and tshark/streamscope, streamscope's peak RssAnon (anonymous
# memory: the mapped capture's pages are file-backed and not counted) and PASS/MISS per
# target. It is a report, not a test: it exits 0 whether the targets are met or not.
#
# Usage: benches/compare.sh [--runs N] [--skip-tshark] [--out DIR] [--seed N] [--taskset CPUS]
#                            [--no-build]
#
#   --runs N        rounds, i.e. timed runs of each command (default 3); medians are reported
#   --skip-tshark   do not run tshark (its columns and targets show n/a)
#   --out DIR       work folder for the captures and outputs (default bench-out/, git-ignored)
#   --seed N        capgen seed (default 1)
#   --taskset CPUS  run every timed command under `taskset -c CPUS` (e.g. 1), to measure on
#                   one CPU; streamscope's Parquet writer threads then share that CPU
#   --no-build      use the release binaries already built (in $CARGO_TARGET_DIR or target/)
#
# Needs: cargo, GNU time (/usr/bin/time, Debian package `time`), and for the tshark column
# tshark itself:  DEBIAN_FRONTEND=noninteractive apt-get install -y tshark
# The commands run in rounds (raw read, streamscope, tshark, then again), and each ratio
# is the median of the per-round ratios, which holds when the machine's speed drifts.
#
# Targets (single thread, page cache):
#   both streaming mixes: streamscope <= 3x raw read, and >= 40x faster than tshark
#   million-flow capture: >= 20x faster than tshark, streamscope peak RssAnon < 512 MiB

set -euo pipefail

RUNS=3
SKIP_TSHARK=0
SEED=1
TASKSET=""
BUILD=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/bench-out"

usage() {
    sed -n '/^# Usage:/,/^#   --taskset/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    sed -n '/^#                   one CPU/,/^#   --no-build/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="${2:?--runs needs a number}"; shift 2 ;;
        --runs=*) RUNS="${1#*=}"; shift ;;
        --skip-tshark) SKIP_TSHARK=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --seed) SEED="${2:?--seed needs a number}"; shift 2 ;;
        --seed=*) SEED="${1#*=}"; shift ;;
        --taskset) TASKSET="${2:?--taskset needs a CPU list}"; shift 2 ;;
        --taskset=*) TASKSET="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "compare.sh: --runs must be a positive integer" >&2; exit 2 ;; esac
case "$SEED" in ''|*[!0-9]*) echo "compare.sh: --seed must be a non-negative integer" >&2; exit 2 ;; esac

say() { printf '%s\n' "$*" >&2; }

if [ ! -x /usr/bin/time ]; then
    say "compare.sh: /usr/bin/time (GNU time) is missing: apt-get install -y time"
    exit 2
fi
PIN=()
if [ -n "$TASKSET" ]; then
    command -v taskset >/dev/null || { say "compare.sh: taskset is missing (package util-linux)"; exit 2; }
    PIN=(taskset -c "$TASKSET")
fi
HAVE_TSHARK=0
if [ "$SKIP_TSHARK" = 0 ]; then
    if command -v tshark >/dev/null; then
        HAVE_TSHARK=1
    else
        say "compare.sh: tshark not found; its columns show n/a."
        say "  install it with: DEBIAN_FRONTEND=noninteractive apt-get install -y tshark"
        say "  or pass --skip-tshark"
    fi
fi

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/streamscope-compare.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------- build
if [ "$BUILD" = 1 ]; then
    say "== building release binaries"
    (cd "$ROOT" && cargo build --release --quiet -p streamscope -p capgen)
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
STREAMSCOPE="$TARGET_DIR/release/streamscope"
CAPGEN="$TARGET_DIR/release/capgen"
for b in "$STREAMSCOPE" "$CAPGEN"; do
    [ -x "$b" ] || { say "compare.sh: $b was not built"; exit 1; }
done

# ---------------------------------------------------------------------------- captures
# NAME SCENARIO: the capture is OUT/NAME.pcap; OUT/NAME.pcap.stamp holds the SHA-256 of
# the scenario and of capgen's sources, and the seed it was made with, so that a capture
# is made again when any of them changes, and only then.
CAPTURES=(
    "streaming tools/capgen/scenarios/bench-streaming.toml"
    "iptv-https tools/capgen/scenarios/bench-iptv-https.toml"
    "flows tools/capgen/scenarios/bench-flows.toml"
)

CAPGEN_SOURCES="$(cd "$ROOT" && { echo tools/capgen/Cargo.toml; find tools/capgen/src -type f; } |
    LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1)"

generate() {
    local name="$1" scenario="$ROOT/$2" file="$OUT/$1.pcap"
    local stamp
    stamp="$(sha256sum "$scenario" | cut -d' ' -f1) capgen=$CAPGEN_SOURCES seed=$SEED"
    if [ -f "$file" ] && [ -f "$file.stamp" ] && [ "$(cat "$file.stamp")" = "$stamp" ]; then
        say "== $name: $file is up to date (same scenario, capgen sources and seed)"
        return
    fi
    say "== $name: generating $file from $2 with seed $SEED"
    rm -f "$file" "$file.stamp"
    "$CAPGEN" "$scenario" --seed "$SEED" -o "$file"
    printf '%s\n' "$stamp" > "$file.stamp"
}

for c in "${CAPTURES[@]}"; do
    # shellcheck disable=SC2086
    generate $c
done

# ---------------------------------------------------------------------------- measuring
median() { # numbers on stdin, one a line
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

now_ns() { date +%s%N; }

# One run under GNU time: appends "wall_s cpu_s maxrss_kib" to the file $1.
# The wall time is taken around the command with nanosecond resolution; CPU time (user +
# system, every thread) and the peak resident set (file-backed pages included) come from
# `/usr/bin/time -v`.
timed_run() {
    local log="$1"; shift
    local t0 t1
    t0=$(now_ns)
    /usr/bin/time -v -o "$TMP/time.txt" "${PIN[@]}" "$@" >/dev/null 2>"$TMP/stderr.txt" || {
        say "compare.sh: failed: $*"; cat "$TMP/stderr.txt" >&2; cat "$TMP/time.txt" >&2; exit 1
    }
    t1=$(now_ns)
    awk -v wall="$(( t1 - t0 ))" -F': ' '
        /User time \(seconds\)/ { u = $2 }
        /System time \(seconds\)/ { s = $2 }
        /Maximum resident set size \(kbytes\)/ { m = $2 }
        END { printf "%.6f %.2f %d\n", wall / 1e9, u + s, m }' "$TMP/time.txt" >> "$log"
}

# Runs the command once while polling /proc/PID/status every 2 ms; prints
# "peak_rssanon_kib peak_vmhwm_kib peak_threads". The command is started directly (no
# wrapper process), so PID is the command itself. The loop forks nothing. A peak shorter
# than the polling interval can be missed, so the figure is a lower bound.
peak_memory() {
    local pid line peak_anon=0 peak_hwm=0 peak_thr=0 v sleeper state
    exec {sleeper}<> <(:)   # a pipe nobody writes to: `read -t` on it sleeps without a fork
    "${PIN[@]}" "$@" >/dev/null 2>"$TMP/stderr.txt" &
    pid=$!
    while :; do
        state=gone
        { while IFS= read -r line; do
            case "$line" in
                State:*) state=${line#State:}; state=${state//[[:space:]]/}; state=${state:0:1} ;;
                RssAnon:*) v=${line//[!0-9]/}; [ "${v:-0}" -gt "$peak_anon" ] && peak_anon=$v ;;
                VmHWM:*) v=${line//[!0-9]/}; [ "${v:-0}" -gt "$peak_hwm" ] && peak_hwm=$v ;;
                Threads:*) v=${line//[!0-9]/}; [ "${v:-0}" -gt "$peak_thr" ] && peak_thr=$v ;;
            esac
        done < "/proc/$pid/status"; } 2>/dev/null || true
        # A finished child stays a zombie (Z) until waited for; its status has no RssAnon.
        case "$state" in gone|Z|X) break ;; esac
        read -r -t 0.002 -u "$sleeper" _ || true
    done
    exec {sleeper}<&-
    wait "$pid" || { say "compare.sh: failed: $*"; cat "$TMP/stderr.txt" >&2; exit 1; }
    echo "$peak_anon $peak_hwm $peak_thr"
}

col_median() { awk -v c="$2" '{ print $c }' "$1" | median; }

fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "" || v == "nan") print "n/a"; else printf f, v }'; }
fx() { local v; v=$(fmt "$1" "$2"); [ "$v" = n/a ] && echo n/a || echo "${v}x"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "nan" || b == "nan" || b <= 0) print "nan"; else printf "%.3f", a / b }'; }
# verdict VALUE OP LIMIT -> PASS / MISS / n/a
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "" || v == "nan") { print "n/a"; exit }
        ok = (op == "<=") ? (v <= l) : (op == ">=") ? (v >= l) : (op == "<") ? (v < l) : (v > l)
        print ok ? "PASS" : "MISS" }'
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
REPORT="$TMP/report.txt"
: > "$REPORT"

for c in "${CAPTURES[@]}"; do
    name="${c%% *}"
    file="$OUT/$name.pcap"
    size=$(stat -c %s "$file")
    outdir="$OUT/$name.analysis"

    say "== $name: warming the page cache"
    cat "$file" > /dev/null
    cat "$file" > /dev/null

    # Rounds of (raw read, streamscope, tshark), so that each ratio compares commands run
    # side by side: on a shared machine whose speed drifts from minute to minute, the
    # median of the per-round ratios is steadier than the ratio of separate medians.
    say "== $name: $RUNS rounds of raw read, streamscope$([ "$HAVE_TSHARK" = 1 ] && echo ', tshark (slow)')"
    : > "$TMP/$name.cat"; : > "$TMP/$name.ss"; : > "$TMP/$name.ts"
    for ((i = 0; i < RUNS; i++)); do
        timed_run "$TMP/$name.cat" cat "$file"
        rm -rf "$outdir"
        timed_run "$TMP/$name.ss" "$STREAMSCOPE" analyze "$file" -o "$outdir" --quiet
        if [ "$HAVE_TSHARK" = 1 ]; then
            timed_run "$TMP/$name.ts" tshark -n -q -r "$file" -z conv,tcp -z conv,udp
        fi
    done
    say "== $name: streamscope peak memory (sampled from /proc every 2 ms)"
    rm -rf "$outdir"
    read -r ss_anon ss_hwm ss_thr < <(peak_memory "$STREAMSCOPE" analyze "$file" -o "$outdir" --quiet)

    ts_wall=nan; ts_cpu=nan; ts_rss=nan
    if [ "$HAVE_TSHARK" = 1 ]; then
        ts_wall=$(col_median "$TMP/$name.ts" 1)
        ts_cpu=$(col_median "$TMP/$name.ts" 2)
        ts_rss=$(col_median "$TMP/$name.ts" 3)
    fi

    cat_wall=$(col_median "$TMP/$name.cat" 1); cat_cpu=$(col_median "$TMP/$name.cat" 2)
    ss_wall=$(col_median "$TMP/$name.ss" 1); ss_cpu=$(col_median "$TMP/$name.ss" 2)
    ss_rss=$(col_median "$TMP/$name.ss" 3)
    mbps() { awk -v s="$size" -v t="$1" 'BEGIN { if (t == "nan" || t <= 0) print "n/a"; else printf "%.0f", s / t / 1e6 }'; }

    # Median over the rounds of each round's ratio (column C of file A over column C of B).
    round_ratio() { paste -d' ' "$1" "$2" | awk -v c="$3" '{ if ($(c + 3) > 0) print $c / $(c + 3) }' | median; }
    round_range() { paste -d' ' "$1" "$2" | awk -v c="$3" '$(c + 3) > 0 { r = $c / $(c + 3); if (n++ == 0 || r < lo) lo = r; if (r > hi) hi = r }
        END { if (n) printf "%.2f-%.2f", lo, hi; else print "n/a" }'; }
    r_raw=$(round_ratio "$TMP/$name.ss" "$TMP/$name.cat" 1)
    r_raw_cpu=$(round_ratio "$TMP/$name.ss" "$TMP/$name.cat" 2)
    r_raw_range=$(round_range "$TMP/$name.ss" "$TMP/$name.cat" 1)
    r_ts=nan; r_ts_cpu=nan; r_ts_range=n/a
    if [ "$HAVE_TSHARK" = 1 ]; then
        r_ts=$(round_ratio "$TMP/$name.ts" "$TMP/$name.ss" 1)
        r_ts_cpu=$(round_ratio "$TMP/$name.ts" "$TMP/$name.ss" 2)
        r_ts_range=$(round_range "$TMP/$name.ts" "$TMP/$name.ss" 1)
    fi
    anon_mib=$(awk -v k="$ss_anon" 'BEGIN { printf "%.1f", k / 1024 }')

    {
        printf '\n### %s: %s (%s bytes, %.1f MB)\n\n' "$name" "$file" "$size" "$(awk -v s="$size" 'BEGIN { print s / 1e6 }')"
        printf '| command | median wall s | MB/s | median CPU s (user+sys) | max RSS (time -v) |\n'
        printf '| --- | ---: | ---: | ---: | ---: |\n'
        printf '| raw read (`cat`) | %s | %s | %s | %s MiB |\n' "$(fmt "$cat_wall" %.3f)" "$(mbps "$cat_wall")" "$(fmt "$cat_cpu" %.2f)" "$(fmt "$(col_median "$TMP/$name.cat" 3)" %.0f | awk '{ print ($1 == "n/a") ? $1 : sprintf("%.1f", $1 / 1024) }')"
        printf '| streamscope analyze | %s | %s | %s | %s MiB |\n' "$(fmt "$ss_wall" %.3f)" "$(mbps "$ss_wall")" "$(fmt "$ss_cpu" %.2f)" "$(awk -v k="$ss_rss" 'BEGIN { printf "%.1f", k / 1024 }')"
        if [ "$HAVE_TSHARK" = 1 ]; then
            printf '| tshark conv,tcp+udp | %s | %s | %s | %s MiB |\n' "$(fmt "$ts_wall" %.3f)" "$(mbps "$ts_wall")" "$(fmt "$ts_cpu" %.2f)" "$(awk -v k="$ts_rss" 'BEGIN { printf "%.1f", k / 1024 }')"
        else
            printf '| tshark conv,tcp+udp | n/a | n/a | n/a | n/a |\n'
        fi
        printf '\n'
        printf -- '- streamscope / raw read: %s wall (%s CPU); rounds %s\n' "$(fx "$r_raw" %.2f)" "$(fx "$r_raw_cpu" %.2f)" "$r_raw_range"
        printf -- '- tshark / streamscope: %s wall (%s CPU); rounds %s\n' "$(fx "$r_ts" %.1f)" "$(fx "$r_ts_cpu" %.1f)" "$r_ts_range"
        printf -- '- streamscope peak RssAnon: %s MiB (sampled every 2 ms, a lower bound; VmHWM %s MiB incl. mapped file pages; up to %s threads)\n' \
            "$anon_mib" "$(awk -v k="$ss_hwm" 'BEGIN { printf "%.1f", k / 1024 }')" "$ss_thr"
        case "$name" in
            streaming | iptv-https)
                printf -- '- target streamscope <= 3x raw read: %s (wall %s)\n' "$(verdict "$r_raw" "<=" 3)" "$(fx "$r_raw" %.2f)"
                printf -- '- target tshark/streamscope >= 40x: %s (wall %s)\n' "$(verdict "$r_ts" ">=" 40)" "$(fx "$r_ts" %.1f)"
                ;;
            flows)
                printf -- '- target tshark/streamscope >= 20x: %s (wall %s)\n' "$(verdict "$r_ts" ">=" 20)" "$(fx "$r_ts" %.1f)"
                printf -- '- target peak RssAnon < 512 MiB: %s (%s MiB)\n' "$(verdict "$anon_mib" "<" 512)" "$anon_mib"
                ;;
        esac
    } >> "$REPORT"
    rm -rf "$outdir"
done

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
{
    printf '## streamscope speed comparison\n\n'
    printf -- '- %s rounds (raw read, streamscope, tshark side by side); times are medians, ratios the median of the per-round ratios; timer: date +%%s%%N around /usr/bin/time -v\n' "$RUNS"
    if [ -n "$TASKSET" ]; then pinning="pinned with taskset -c $TASKSET"; else pinning="not pinned"; fi
    printf -- '- seed %s; %s\n' "$SEED" "$pinning"
    printf -- '- load average before: %s, after: %s (nproc %s)\n' "$LOAD_BEFORE" "$LOAD_AFTER" "$(nproc)"
    printf -- '- streamscope: %s\n' "$("$STREAMSCOPE" --version 2>/dev/null || echo "$STREAMSCOPE")"
    [ "$HAVE_TSHARK" = 1 ] && printf -- '- tshark: %s\n' "$(tshark --version 2>/dev/null | head -1)"
    cat "$REPORT"
} 
