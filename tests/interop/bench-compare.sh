#!/usr/bin/env bash
# Side-by-side producer benchmark: kafka-sansio (examples/producer_perf, both
# drivers, release build) against librdkafka (target/interop/rdkafka_perf, and
# rdkafka_perf_bundled when built), same settings, same broker, interleaved
# over several rounds, each run under `/usr/bin/time -f "%U %S %M %c %w"` (CPU,
# peak RSS, involuntary and voluntary context switches).
#
#   tests/interop/bench-compare.sh [--quick | --open-loop] [--rounds N] [--peers mock,mock-current,tansu,kafka]
#                                  [--records-100 N] [--records-1k N] [--clients LIST]
#                                  [--features LIST]   (cargo features for producer_perf,
#                                                       e.g. crc-fast)
#                                  [--kafka-rf N]      (replication factor of the kafka topics, 3)
#                                  [--pacing per-record|java]  (the open loop's schedule for
#                                                       every client but Java: a sleep per record, or
#                                                       Kafka's own throttle, as the Java tool paces)
#                                  [--only REGEX]      (only the settings whose line
#                                                       "size partitions acks linger batch throughput"
#                                                       matches, e.g. '^1024 . 1 . 1048576')
#
# Brokers, one at a time, each with 1 broker:
#   mock          librdkafka 2.0.2's mock cluster (target/interop/rdkafka_mock), started here
#   mock-current  the current librdkafka's mock cluster (target/interop/rdkafka_mock_current,
#                 2.12 or later, from the confluent-kafka wheel), started here; skipped
#                 with a message when build.sh could not build it
#   tansu         tests/interop/start-tansu.sh (restarted per setting: memory storage grows)
#   kafka  Apache Kafka 4.4.0, three KRaft nodes (tests/interop/kafka/kafka-cluster.sh start;
#          left running when it was already up); only here the client "java" runs too:
#          Kafka's own ProducerPerformance (the Java producer), same flags, as one JVM per run
#          (its CPU includes JVM start-up and JIT)
# Settings (full): value 100 B / 1 KiB x partitions 1 / 8 x acks=1 (no
# idempotence) / acks=all + idempotence x linger.ms 0 / 5 x batch.size 1 MiB /
# 16384 (Java's default; set explicitly for both clients, librdkafka's own
# default is 1 MB), with 5 requests in flight and 32 MiB of buffer for both
# (Java's defaults; librdkafka's are 1,000,000 and 1 GiB), plus an open-loop run at --throughput 10000 with linger 0
# for latency. --quick runs a few representative settings with fewer records,
# --open-loop only the open-loop run.
# The client "floor" runs in every setting (examples/wire_floor): the
# benchmark's own clock reads and latencies, each value copied once into a
# batch with its CRC, full batches (open loop: each record when it is due,
# unless 5 requests are unanswered) written to partition 0 and their answers
# read by a second thread, no client logic: what
# any client pays for those records on this machine. The ratios are also given
# net of it: (ours - floor) / (librdkafka - floor). The floor sends to one
# partition; with several, a client can go under it (reported as such).
#
# Per client and setting it prints the best records/s and MB/s, the lowest
# client CPU (user+sys) in seconds per million records, the context switches per
# record of that run, the median p50/p99 latency and the largest peak RSS over
# the rounds; then ratios ours/librdkafka.
# Raw results: target/interop/bench/results.tsv.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/interop/bench"
mkdir -p "$out"
export PATH="$HOME/.cargo/bin:$PATH"

quick=0
open_only=0
only=""
pacing=per-record
rounds=""
peers="mock,mock-current,tansu"
n100=""
n1k=""
clients="sansio-blocking,sansio-mio,rdkafka,java,floor"
features=""
kafka_rf=3
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --open-loop) open_only=1; shift ;;
        --only) only="$2"; shift 2 ;;
        --pacing) pacing="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --peers) peers="$2"; shift 2 ;;
        --records-100) n100="$2"; shift 2 ;;
        --records-1k) n1k="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        --features) features="$2"; shift 2 ;;
        --kafka-rf) kafka_rf="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
        *) echo "bench-compare: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$pacing" in
    per-record|java) ;;
    *) echo "bench-compare: --pacing is per-record or java, not $pacing" >&2; exit 2 ;;
esac
if [ "$quick" = 1 ]; then
    rounds="${rounds:-2}"; n100="${n100:-500000}"; n1k="${n1k:-200000}"
else
    rounds="${rounds:-3}"; n100="${n100:-2000000}"; n1k="${n1k:-500000}"
fi

say() { echo "bench-compare: $*" >&2; }

# ---- build ---------------------------------------------------------------------
say "building (release${features:+, features $features})"
(cd "$root" && cargo build --release --example producer_perf --example wire_floor ${features:+--features "$features"} >&2)
"$here/build.sh" >&2
ours="$root/target/release/examples/producer_perf"
floor="$root/target/release/examples/wire_floor"
rdk="$root/target/interop/rdkafka_perf"
if [ -x "$root/target/interop/rdkafka_perf_bundled" ] && [[ ",$clients," == *",rdkafka,"* ]]; then
    clients="$clients,rdkafka-2.16"
fi

# ---- settings --------------------------------------------------------------------
# size partitions acks linger batch throughput
settings=()
if [ "$open_only" = 1 ]; then
    :
elif [ "$quick" = 1 ]; then
    settings+=("100 1 all 5 16384 -1")
    settings+=("100 1 all 5 1048576 -1")
    settings+=("1024 1 all 5 1048576 -1")
    settings+=("100 8 1 0 16384 -1")
else
    for size in 100 1024; do
        for parts in 1 8; do
            for acks in 1 all; do
                for linger in 0 5; do
                    for batch in 1048576 16384; do
                        settings+=("$size $parts $acks $linger $batch -1")
                    done
                done
            done
        done
    done
fi
settings+=("100 1 all 0 16384 10000")
if [ -n "$only" ]; then
    kept=()
    for s in "${settings[@]}"; do
        if [[ "$s" =~ $only ]]; then kept+=("$s"); fi
    done
    settings=("${kept[@]}")
fi

results="$out/results.tsv"
: >"$results"

# ---- brokers -----------------------------------------------------------------------
mock_pid=""
mock_in=""
start_mock() { # binary
    local fifo="$out/mock.in"
    rm -f "$fifo"; mkfifo "$fifo"
    "$1" --brokers 1 <"$fifo" >"$out/mock.out" 2>"$out/mock.err" &
    mock_pid=$!
    exec {mock_in}>"$fifo"
    for _ in $(seq 1 100); do
        grep -q '^BOOTSTRAP ' "$out/mock.out" 2>/dev/null && break
        sleep 0.1
    done
    bootstrap="$(sed -n 's/^BOOTSTRAP //p' "$out/mock.out" | head -1)"
    [ -n "$bootstrap" ] || { say "rdkafka_mock did not start"; exit 1; }
}
stop_mock() {
    if [ -n "$mock_pid" ]; then
        echo quit >&"$mock_in" || true
        exec {mock_in}>&-
        wait "$mock_pid" 2>/dev/null || true
        mock_pid=""
    fi
}
create_topic() { # peer name partitions
    case "$1" in
        mock|mock-current) echo "create_topic $2 $3" >&"$mock_in"; sleep 0.05 ;;
        tansu) "$here/tansu-topic.sh" "$2" "$3" "$bootstrap" 2>/dev/null ;;
        kafka) "$kafka_ctl" create-topic "$2" "$3" "$kafka_rf" 2>/dev/null ;;
    esac
}
kafka_ctl="$here/kafka/kafka-cluster.sh"
kafka_started=0
start_kafka() {
    # Status captured first: under pipefail, grep -q closing the pipe early
    # could fail the pipeline and count a running cluster as started here.
    local st
    st="$("$kafka_ctl" status)"
    if [[ "$st" != *"node 1 up"* ]]; then
        kafka_started=1
    fi
    bootstrap="$("$kafka_ctl" start)"
}
start_tansu() {
    "$here/stop-tansu.sh" 2>/dev/null || true
    bootstrap="$("$here/start-tansu.sh")"
}
cleanup() {
    stop_mock
    if [[ ",$peers," == *",tansu,"* ]]; then "$here/stop-tansu.sh" 2>/dev/null || true; fi
    if [ "$kafka_started" = 1 ]; then "$kafka_ctl" stop 2>/dev/null || true; fi
}
trap cleanup EXIT

# ---- one run -------------------------------------------------------------------------
run_one() { # peer client size parts acks linger batch tp topic n
    local peer=$1 client=$2 size=$3 parts=$4 acks=$5 linger=$6 batch=$7 tp=$8 topic=$9 n=${10}
    local idem=false
    [ "$acks" = all ] && idem=true
    # Equal limits where the two clients' defaults differ: 5 requests in
    # flight per connection (Java's default; librdkafka's is 1,000,000) and
    # 32 MiB of buffered records (Java's buffer.memory; librdkafka's default
    # queue.buffering.max.kbytes is 1 GiB).
    local props=(bootstrap.servers="$bootstrap" acks="$acks" enable.idempotence=$idem
                 linger.ms="$linger" batch.size="$batch"
                 max.in.flight.requests.per.connection=5)
    local cmd
    # The Java tool paces as Kafka's throttle does; the others as --pacing says.
    local pace=(--pacing "$pacing")
    case "$client" in
        sansio-blocking) cmd=("$ours" --driver blocking); props+=(buffer.memory=33554432) ;;
        sansio-mio) cmd=("$ours" --driver mio); props+=(buffer.memory=33554432) ;;
        rdkafka) cmd=("$rdk"); props+=(queue.buffering.max.kbytes=32768) ;;
        rdkafka-2.16) cmd=("$root/target/interop/rdkafka_perf_bundled"); props+=(queue.buffering.max.kbytes=32768) ;;
        java) cmd=("$kafka_ctl" perf); props=("${props[@]:1}" buffer.memory=33554432); pace=() ;;
        floor) cmd=("$floor") ;;
    esac
    local log="$out/run.out" tf="$out/run.time" pflag=--producer-props
    # ProducerPerformance 4.4 deprecates --producer-props for --command-property
    # (and takes the bootstrap list from kafka-cluster.sh's --bootstrap-server).
    [ "$client" = java ] && pflag=--command-property
    if ! /usr/bin/time -f "%U %S %M %c %w" -o "$tf" "${cmd[@]}" --topic "$topic" --num-records "$n" \
        --record-size "$size" --throughput "$tp" "${pace[@]}" "$pflag" "${props[@]}" \
        >"$log" 2>"$out/run.err"; then
        say "FAILED: $client on $peer ($size B, $parts p, acks=$acks, linger $linger, batch $batch, tp $tp)"
        tail -3 "$out/run.err" >&2
        return 0
    fi
    local last; last="$(tail -1 "$log")"
    # N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th.
    read -r recs rate mbs p50 p99 < <(echo "$last" | awk '{gsub(/[(,]/," "); print $1, $4, $6, $16, $22}')
    read -r user sys rss invol vol < "$tf"
    printf '%s\t%s\t%s %sp acks=%s linger=%s batch=%s tp=%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$peer" "$client" "$size" "$parts" "$acks" "$linger" "$batch" "$tp" \
        "$recs" "$rate" "$mbs" "$user" "$sys" "$rss" "$p50" "$p99" "$invol" "$vol" >>"$results"
}

# ---- main loop -------------------------------------------------------------------------
IFS=, read -r -a peer_list <<<"$peers"
IFS=, read -r -a client_list <<<"$clients"
for peer in "${peer_list[@]}"; do
    case "$peer" in
        mock) start_mock "$root/target/interop/rdkafka_mock" ;;
        mock-current)
            if [ ! -x "$root/target/interop/rdkafka_mock_current" ]; then
                say "skipping mock-current: target/interop/rdkafka_mock_current not built (build.sh needs confluent-kafka with librdkafka 2.12+)"
                continue
            fi
            start_mock "$root/target/interop/rdkafka_mock_current" ;;
        tansu) ;;
        kafka) start_kafka ;;
        *) say "unknown peer $peer"; exit 2 ;;
    esac
    si=0
    for s in "${settings[@]}"; do
        read -r size parts acks linger batch tp <<<"$s"
        si=$((si + 1))
        [ "$peer" = tansu ] && start_tansu
        n=$n100
        [ "$size" -gt 100 ] && n=$n1k
        [ "$tp" != -1 ] && n=$((tp * (quick == 1 ? 5 : 15)))
        say "$peer: $size B, $parts partition(s), acks=$acks, linger.ms=$linger, batch.size=$batch, throughput $tp, $n records"
        for r in $(seq 1 "$rounds"); do
            for client in "${client_list[@]}"; do
                # Debian's librdkafka 2.0.2 cannot parse tansu's ApiVersions
                # answer (peers/README.md): against tansu only the bundled
                # librdkafka 2.16 is compared.
                if [ "$peer" = tansu ] && [ "$client" = rdkafka ]; then
                    continue
                fi
                if [ "$peer" != kafka ] && [ "$client" = java ]; then
                    continue
                fi
                topic="bench-$si-$r-${client//./}-$$"
                create_topic "$peer" "$topic" "$parts"
                run_one "$peer" "$client" "$size" "$parts" "$acks" "$linger" "$batch" "$tp" "$topic" "$n"
            done
        done
    done
    # Kafka keeps every record (no retention, for the tests' old
    # timestamps): the run's topics go, or a few matrices fill the disk.
    if [ "$peer" = kafka ]; then
        "$kafka_ctl" delete-topic "bench-.*-$$" 2>/dev/null || say "could not delete this run's topics (bench-*-$$)"
    fi
    stop_mock
done

# ---- report ----------------------------------------------------------------------------
python3 - "$results" <<'EOF'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
groups = {}
for peer, client, setting, recs, rate, mbs, user, sys_, rss, p50, p99, invol, vol in rows:
    recs = int(recs)
    g = groups.setdefault((peer, setting), {}).setdefault(client, [])
    g.append(dict(rate=float(rate), mbs=float(mbs), cpu=(float(user) + float(sys_)) / recs * 1e6,
                  rss=int(rss), p50=int(p50), p99=int(p99), cs=(int(invol) + int(vol)) / recs))
ratios = []
summary = {}
for (peer, setting), clients in groups.items():
    print(f"\n== {peer}: {setting}")
    print(f"{'client':<16}{'records/s':>12}{'MB/s':>9}{'CPU s/M rec':>13}{'ns/rec':>8}{'cs/rec':>8}{'p50 ms':>8}{'p99 ms':>8}{'RSS MiB':>9}")
    best = {}
    for c, rs in sorted(clients.items()):
        low = min(rs, key=lambda r: r["cpu"])
        b = dict(rate=max(r["rate"] for r in rs), mbs=max(r["mbs"] for r in rs),
                 cpu=low["cpu"], cs=low["cs"], rss=max(r["rss"] for r in rs),
                 p50=statistics.median(r["p50"] for r in rs), p99=statistics.median(r["p99"] for r in rs))
        best[c] = b
        print(f"{c:<16}{b['rate']:>12.0f}{b['mbs']:>9.1f}{b['cpu']:>13.3f}{b['cpu']*1000:>8.0f}{b['cs']:>8.2f}{b['p50']:>8.0f}{b['p99']:>8.0f}{b['rss']/1024:>9.1f}")
    for base in ("rdkafka", "rdkafka-2.16", "java"):
        if base not in best:
            continue
        r = best[base]
        for c in ("sansio-blocking", "sansio-mio"):
            if c in best:
                o = best[c]
                line = (f"{peer:<12} {setting:<55} {c:<16} vs {base:<12} CPU/rec {o['cpu']/r['cpu']:.2f}x  rec/s {o['rate']/r['rate']:.2f}x"
                        f"  cs/rec {o['cs']:.2f} vs {r['cs']:.2f}  p99 {o['p99']:.0f} vs {r['p99']:.0f} ms  RSS {o['rss']/max(r['rss'],1):.2f}x")
                f = best.get("floor")
                net = None
                # The floor sends one partition: with several, a client that
                # puts many partitions' batches in one request can go under it.
                under = bool(f) and o["cpu"] < f["cpu"]
                if under:
                    line += "  under the floor"
                elif f and r["cpu"] > f["cpu"]:
                    net = (o["cpu"] - f["cpu"]) / (r["cpu"] - f["cpu"])
                    line += f"  net of floor {net:.2f}x"
                ratios.append(line)
                summary.setdefault((peer, base), []).append((o["cpu"] / r["cpu"], net, o["rate"] / r["rate"], under))
print("\n== ratios to librdkafka (system 2.0.2 and the bundled 2.16, each where it ran) and to the Java producer (kafka); CPU < 0.50x is the goal")
for l in ratios:
    print(l)
print("\n== per broker: CPU per record, ours / theirs, and net of the floor: (ours - floor) / (theirs - floor)")
for (peer, base), v in summary.items():
    raw = [x[0] for x in v]
    nets = [x[1] for x in v if x[1] is not None]
    line = (f"{peer:<12} vs {base:<12} {len(v)} runs: {min(raw):.2f}-{max(raw):.2f}x, mean {statistics.mean(raw):.2f}x, "
            f"{sum(x <= 0.5 for x in raw)} at or under 0.5x; records/s {min(x[2] for x in v):.2f}x or more")
    if nets:
        line += (f"; net of floor {min(nets):.2f}-{max(nets):.2f}x, mean {statistics.mean(nets):.2f}x, "
                 f"{sum(x <= 0.5 for x in nets)} of {len(nets)} at or under 0.5x, {sum(x[3] for x in v)} under the floor")
    print(line)
EOF
