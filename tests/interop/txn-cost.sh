#!/usr/bin/env bash
# What a transaction costs: examples/txn_perf (both drivers, release build)
# against kafkasansio.TxnPerf (Kafka's Java producer, the same loop: begin, N
# records, commit) on the same Apache Kafka 4.4 cluster
# (tests/interop/kafka/kafka-cluster.sh), interleaved over several rounds.
#
#   tests/interop/txn-cost.sh [--rounds N] [--sizes "1:300 100:100 10000:10"]
#                             [--txn-version 1|2] [--clients LIST] [--record-size S]
#
# --sizes lists RECORDS_PER_TRANSACTION:TRANSACTIONS pairs. --txn-version sets
# the cluster's finalized transaction.version first (kafka-cluster.sh
# set-txn-version; 2, KIP-890, is what the cluster is formatted with) and puts
# it back to 2 at the end. Each run: one topic of 3 partitions (RF 3), 100 B
# values, 3 warm-up transactions not measured, CPU of the client process in the
# measured part (both tools read /proc/self/stat, so JVM start-up is excluded).
#
# Prints, per client and transaction size, the median commits/s, records/s,
# average transaction time and CPU per transaction over the rounds, and the
# ratios ours/Java. Raw results: target/interop/bench/txn.tsv.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/kafka-bench.sh"

rounds=3
sizes="1:300 100:100 10000:10"
txn_version=""
clients="sansio-blocking,sansio-mio,java"
record_size=100
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --sizes) sizes="$2"; shift 2 ;;
        --txn-version) txn_version="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        --record-size) record_size="$2"; shift 2 ;;
        *) echo "usage: $0 [--rounds N] [--sizes LIST] [--txn-version V] [--clients LIST] [--record-size S]" >&2; exit 2 ;;
    esac
done
build_example txn_perf

kafka_up
finish() {
    if [ -n "$txn_version" ]; then "$ctl" set-txn-version 2 >/dev/null 2>&1 || true; fi
    kafka_down
}
trap finish EXIT
if [ -n "$txn_version" ]; then "$ctl" set-txn-version "$txn_version" >&2; fi
say "transaction.version $("$ctl" txn-version)"

topic="txn-cost-$$"
"$ctl" create-topic "$topic" 3 3 >/dev/null 2>&1
results="$out/txn.tsv"
: >"$results"
IFS=, read -r -a client_list <<<"$clients"
for r in $(seq 1 "$rounds"); do
    for s in $sizes; do
        n="${s%%:*}" t="${s##*:}"
        for c in "${client_list[@]}"; do
            id="txn-cost-$c-$$"
            args=(--txn-records "$n" --transactions "$t" --record-size "$record_size" --transactional-id "$id")
            case "$c" in
                sansio-blocking|sansio-mio) cmd=("$ours" --bootstrap "$bootstrap" --topic "$topic" --driver "${c#sansio-}" "${args[@]}") ;;
                java) cmd=("$ctl" txn-perf "$topic" "${args[@]}") ;;
            esac
            if ! "${cmd[@]}" >"$out/txn.out" 2>"$out/txn.err"; then
                say "FAILED: $c, $n records a transaction"; tail -3 "$out/txn.err" >&2; continue
            fi
            line="$(grep '^TXNPERF' "$out/txn.out" | tail -1)"
            get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$n" "$(get commits_per_s)" "$(get records_per_s)" \
                "$(get avg_txn_ms)" "$(get cpu_ms_per_txn)" >>"$results"
            say "round $r: $c $n records/txn: $(get commits_per_s) commits/s, $(get cpu_ms_per_txn) ms CPU/txn"
        done
    done
done
"$ctl" delete-topic "$topic" >/dev/null 2>&1 || true

echo
printf '%-16s %8s %11s %12s %12s %14s %10s %10s\n' client rec/txn commits/s records/s avg_txn_ms cpu_ms/txn "commits/s" "cpu/txn"
printf '%-16s %8s %11s %12s %12s %14s %10s %10s\n' "" "" "(median)" "(median)" "(median)" "(median)" "vs java" "vs java"
awk -F'\t' "$awk_median"'
    { k = $1 "\t" $2; c[k] = c[k] " " $3; r[k] = r[k] " " $4; l[k] = l[k] " " $5; u[k] = u[k] " " $6
      if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
    END { for (i = 0; i < n; i++) { k = order[i]; split(k, f, "\t"); j = "java\t" f[2]
            jc = (j in c) ? median(c[j]) : 0; ju = (j in u) ? median(u[j]) : 0
            printf "%-16s %8s %11.1f %12.0f %12.2f %14.3f %9.2fx %9.2fx\n", f[1], f[2], median(c[k]), median(r[k]),
                median(l[k]), median(u[k]), jc ? median(c[k]) / jc : 0, ju ? median(u[k]) / ju : 0 } }
' "$results" | sort -k1,1 -k2,2n -s
