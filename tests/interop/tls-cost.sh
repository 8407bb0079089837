#!/usr/bin/env bash
# What TLS and SASL cost the client: examples/producer_perf (both drivers,
# release build) and Kafka's own ProducerPerformance (the Java producer) over
# the plaintext listener and the secured listeners of the same Apache Kafka 4.4
# cluster (tests/interop/kafka/kafka-cluster.sh), same settings, interleaved
# over several rounds, each run under `/usr/bin/time -f "%U %S %M %c %w"`.
#
#   tests/interop/tls-cost.sh [--rounds N] [--records N] [--sizes "100 1024"]
#                             [--listeners "plaintext ssl sasl_ssl-scram"] [--clients LIST]
#
# Listeners: plaintext, ssl (TLS 1.3 with a client certificate), sasl_ssl-scram
# (TLS + SCRAM-SHA-512, re-authenticated every connections.max.reauth.ms),
# sasl_ssl-plain, sasl_plaintext-scram, sasl_plaintext-plain: kafka-cluster.sh's
# profiles. Setting: acks=all with idempotence, linger.ms 5, batch.size 16384,
# 5 requests in flight, one topic of 3 partitions (RF 3), throughput unlimited.
#
# Prints, per client, size and listener, the lowest client CPU (user+sys) in
# microseconds per record over the rounds, the best records/s, and the ratio
# to the same client's plaintext CPU. Raw results: target/interop/bench/tls.tsv.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/kafka-bench.sh"

rounds=3
records=500000
sizes="100 1024"
listeners="plaintext ssl sasl_ssl-scram"
clients="sansio-blocking,sansio-mio,java"
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --records) records="$2"; shift 2 ;;
        --sizes) sizes="$2"; shift 2 ;;
        --listeners) listeners="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        *) echo "usage: $0 [--rounds N] [--records N] [--sizes LIST] [--listeners LIST] [--clients LIST]" >&2; exit 2 ;;
    esac
done
build_example producer_perf

kafka_up
trap kafka_down EXIT
eval "$("$ctl" secure-env | sed 's/^/export /')"

# The producer_perf properties of a listener profile (the ones kafka-cluster.sh
# writes for the Java clients, in the names this crate reads).
tls="$KAFKA_SANSIO_KAFKA_TLS"
ours_props() {
    local tls_props=(ssl.truststore.type=PEM ssl.truststore.location="$tls/ca.pem")
    local scram=(sasl.mechanism=SCRAM-SHA-512 sasl.username="$KAFKA_SANSIO_KAFKA_USER" sasl.password="$KAFKA_SANSIO_KAFKA_PASSWORD")
    local plain=(sasl.mechanism=PLAIN sasl.username="$KAFKA_SANSIO_KAFKA_USER" sasl.password="$KAFKA_SANSIO_KAFKA_PASSWORD")
    case "$1" in
        plaintext) props=(bootstrap.servers="$bootstrap") ;;
        ssl) props=(bootstrap.servers="$KAFKA_SANSIO_KAFKA_SSL" security.protocol=SSL "${tls_props[@]}"
                    ssl.keystore.type=PEM ssl.keystore.location="$tls/client.pem") ;;
        sasl_ssl-scram) props=(bootstrap.servers="$KAFKA_SANSIO_KAFKA_SASL_SSL" security.protocol=SASL_SSL "${tls_props[@]}" "${scram[@]}") ;;
        sasl_ssl-plain) props=(bootstrap.servers="$KAFKA_SANSIO_KAFKA_SASL_SSL" security.protocol=SASL_SSL "${tls_props[@]}" "${plain[@]}") ;;
        sasl_plaintext-scram) props=(bootstrap.servers="$KAFKA_SANSIO_KAFKA_SASL_PLAINTEXT" security.protocol=SASL_PLAINTEXT "${scram[@]}") ;;
        sasl_plaintext-plain) props=(bootstrap.servers="$KAFKA_SANSIO_KAFKA_SASL_PLAINTEXT" security.protocol=SASL_PLAINTEXT "${plain[@]}") ;;
        *) echo "unknown listener $1" >&2; exit 2 ;;
    esac
}

topic="tls-cost-$$"
"$ctl" create-topic "$topic" 3 3 >/dev/null 2>&1
common=(acks=all enable.idempotence=true linger.ms=5 batch.size=16384
        max.in.flight.requests.per.connection=5 buffer.memory=33554432)
results="$out/tls.tsv"
: >"$results"
IFS=, read -r -a client_list <<<"$clients"
for r in $(seq 1 "$rounds"); do
    for size in $sizes; do
        for l in $listeners; do
            for c in "${client_list[@]}"; do
                tf="$out/tls.time"
                case "$c" in
                    sansio-blocking|sansio-mio)
                        ours_props "$l"
                        cmd=("$ours" --driver "${c#sansio-}" --topic "$topic" --num-records "$records"
                             --record-size "$size" --throughput -1 --producer-props "${props[@]}" "${common[@]}") ;;
                    java)
                        lflag=()
                        [ "$l" != plaintext ] && lflag=(--listener "$l")
                        cmd=("$ctl" perf "${lflag[@]}" --topic "$topic" --num-records "$records"
                             --record-size "$size" --throughput -1 --command-property "${common[@]}") ;;
                esac
                if ! /usr/bin/time -f "%U %S %M %c %w" -o "$tf" "${cmd[@]}" >"$out/tls.out" 2>"$out/tls.err"; then
                    say "FAILED: $c over $l ($size B)"; tail -3 "$out/tls.err" >&2; continue
                fi
                read -r recs rate < <(tail -1 "$out/tls.out" | awk '{print $1, $4}')
                read -r user sys rss ivcs vcs < "$tf"
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$size" "$l" "$recs" "$rate" \
                    "$user" "$sys" "$rss" "$ivcs" "$vcs" >>"$results"
                say "round $r: $c $size B $l: $rate records/s, cpu $user+$sys s"
            done
        done
    done
done
"$ctl" delete-topic "$topic" >/dev/null 2>&1 || true

echo
printf '%-16s %6s %-22s %12s %14s %10s\n' client size listener "records/s" "cpu us/record" "vs plain"
awk -F'\t' '
    { key = $1 "\t" $2 "\t" $3; cpu = ($6 + $7) * 1e6 / $4
      if (!(key in best) || cpu < best[key]) best[key] = cpu
      if (!(key in rate) || $5 > rate[key]) rate[key] = $5
      if (!(key in seen)) { seen[key] = 1; order[n++] = key } }
    END { for (i = 0; i < n; i++) { k = order[i]; split(k, f, "\t")
            base = best[f[1] "\t" f[2] "\tplaintext"]
            printf "%-16s %6s %-22s %12.0f %14.2f %9.2fx\n", f[1], f[2], f[3], rate[k], best[k], best[k] / base } }
' "$results" | sort -k1,1 -k2,2n -s
