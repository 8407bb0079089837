#!/usr/bin/env bash
# Adaptive partitioning (KIP-794) on Apache Kafka 4.4 with one slow broker:
# examples/producer_perf (both drivers) and Kafka's own ProducerPerformance
# (the Java producer), keyless records offered open-loop, with
# partitioner.adaptive.partitioning.enable false, true, and true with
# partitioner.availability.timeout.ms = --avail-ms ("avail"), while one broker
# (not the active controller) is stopped and continued in a duty cycle
# (SIGSTOP for --stop-ms, SIGCONT for --run-ms, over and over): a broker that
# answers, but late. The same runs without the slow broker are the baseline.
#
#   tests/interop/adaptive-kafka.sh [--rounds N] [--rate R] [--records N] [--size S]
#                                   [--stop-ms MS] [--run-ms MS] [--avail-ms MS] [--clients LIST]
#
# Topic: 6 partitions, replication factor 1 (two leaders a broker, so a slow
# broker slows only its own partitions), acks=all, linger.ms 5, batch.size
# 16384. Prints per client, setting and slow/not the median records/s,
# p50/p99 latency (from each record's scheduled time) and, for ours, the
# share of records the slow broker's partitions took.
# Raw results: target/interop/bench/adaptive.tsv.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/kafka-bench.sh"

rounds=3
rate=20000
records=100000
size=512
stop_ms=100
run_ms=100
avail_ms=50
clients="sansio-blocking,sansio-mio,java"
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --rate) rate="$2"; shift 2 ;;
        --records) records="$2"; shift 2 ;;
        --size) size="$2"; shift 2 ;;
        --stop-ms) stop_ms="$2"; shift 2 ;;
        --run-ms) run_ms="$2"; shift 2 ;;
        --avail-ms) avail_ms="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        *) echo "usage: $0 [--rounds N] [--rate R] [--records N] [--size S] [--stop-ms MS] [--run-ms MS] [--clients LIST]" >&2; exit 2 ;;
    esac
done
build_example producer_perf

kafka_up
duty_pid=""
slow_pid=""
finish() {
    if [ -n "$duty_pid" ]; then kill "$duty_pid" 2>/dev/null || true; wait "$duty_pid" 2>/dev/null || true; fi
    if [ -n "$slow_pid" ]; then kill -CONT "$slow_pid" 2>/dev/null || true; fi
    kafka_down
}
trap finish EXIT

# The slow broker: a node that is not the active controller (stopping the
# controller would stall every broker's metadata, not just one broker).
leader="$("$ctl" java org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$bootstrap" \
    describe --status 2>/dev/null | sed -n 's/^LeaderId: *//p')"
slow=1
[ "$leader" = 1 ] && slow=2
slow_pid="$("$ctl" status | awk -v n="$slow" '$1 == "node" && $2 == n && $3 == "up" { print $4 }')"
[ -n "$slow_pid" ] || { say "node $slow is not up"; exit 1; }
say "active controller: node $leader; slow broker: node $slow (pid $slow_pid), ${stop_ms} ms stopped / ${run_ms} ms running"

topic="adaptive-$$"
"$ctl" create-topic "$topic" 6 1 >/dev/null 2>&1
# Partitions led by the slow broker.
slow_parts="$("$ctl" describe-topic "$topic" | awk -v n="$slow" '
    { p = ""; l = ""; for (i = 1; i <= NF; i++) { if ($i == "Partition:") p = $(i + 1); if ($i == "Leader:") l = $(i + 1) }
      if (p != "" && l == n) printf "%s ", p }')"
say "partitions led by node $slow: $slow_parts"

duty() {
    local s r
    s="$(awk -v m="$stop_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
    r="$(awk -v m="$run_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
    while true; do
        kill -STOP "$slow_pid"; sleep "$s"
        kill -CONT "$slow_pid"; sleep "$r"
    done
}

results="$out/adaptive.tsv"
: >"$results"
IFS=, read -r -a client_list <<<"$clients"
common=(acks=all enable.idempotence=true linger.ms=5 batch.size=16384)
for r in $(seq 1 "$rounds"); do
    for cond in steady slow; do
        if [ "$cond" = slow ]; then duty & duty_pid=$!; sleep 1; fi
        for adaptive in false true avail; do
            for c in "${client_list[@]}"; do
                # avail: adaptive, and a broker that has taken no request for
                # --avail-ms while its partitions wait is left out entirely.
                props=("${common[@]}" partitioner.adaptive.partitioning.enable=${adaptive/avail/true})
                [ "$adaptive" = avail ] && props+=(partitioner.availability.timeout.ms="$avail_ms")
                case "$c" in
                    sansio-blocking|sansio-mio)
                        cmd=("$ours" --driver "${c#sansio-}" --per-partition --topic "$topic" --num-records "$records"
                             --record-size "$size" --throughput "$rate" --producer-props bootstrap.servers="$bootstrap" "${props[@]}") ;;
                    java)
                        cmd=("$ctl" perf --topic "$topic" --num-records "$records" --record-size "$size"
                             --throughput "$rate" --command-property "${props[@]}") ;;
                esac
                if ! "${cmd[@]}" >"$out/adaptive.out" 2>"$out/adaptive.err"; then
                    say "FAILED: $c $cond adaptive=$adaptive"; tail -3 "$out/adaptive.err" >&2; continue
                fi
                # N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, ...
                read -r rps avg p50 p95 p99 < <(tail -1 "$out/adaptive.out" | awk '{gsub(/[(,]/," "); print $4, $8, $16, $19, $22}')
                share="-"
                if [ "$c" != java ]; then
                    share="$(awk -v parts=" $slow_parts" '
                        /partition [0-9]+:/ { p = $3; sub(":", "", p); n = $4; total += n; if (index(parts, " " p " ")) slow += n }
                        END { if (total) printf "%.1f", slow * 100 / total; else print "-" }' "$out/adaptive.err")"
                fi
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$cond" "$adaptive" "$rps" "$avg" "$p50" "$p95" "$p99" "$share" >>"$results"
                say "round $r: $c $cond adaptive=$adaptive: $rps records/s, avg $avg p50 $p50 p95 $p95 p99 $p99 ms, slow share $share %"
            done
        done
        if [ "$cond" = slow ]; then kill "$duty_pid" 2>/dev/null || true; wait "$duty_pid" 2>/dev/null || true; duty_pid=""; kill -CONT "$slow_pid"; sleep 2; fi
    done
done
"$ctl" delete-topic "$topic" >/dev/null 2>&1 || true

echo
printf '%-16s %-7s %-9s %11s %8s %8s %8s %8s %12s\n' client broker adaptive "records/s" "avg ms" "p50 ms" "p95 ms" "p99 ms" "slow share %"
awk -F'\t' "$awk_median"'
    { k = $1 "\t" $2 "\t" $3; t[k] = t[k] " " $4; v[k] = v[k] " " $5; a[k] = a[k] " " $6; q[k] = q[k] " " $7; b[k] = b[k] " " $8; s[k] = s[k] " " $9
      if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
    END { for (i = 0; i < n; i++) { k = order[i]; split(k, f, "\t")
            sh = (f[1] == "java") ? "-" : sprintf("%.1f", median(s[k]))
            printf "%-16s %-7s %-9s %11.0f %8.1f %8.1f %8.1f %8.1f %12s\n", f[1], f[2], f[3], median(t[k]), median(v[k]), median(a[k]), median(q[k]), median(b[k]), sh } }
' "$results" | sort -k1,1 -s
