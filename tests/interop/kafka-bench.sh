# Shared by the Kafka benchmarks (tls-cost.sh, txn-cost.sh, adaptive-kafka.sh);
# sourced, not run. Sets here/root/out/ctl, and gives:
#   say MSG              a progress line on stderr
#   build_example NAME   release build of examples/NAME (all features); sets $ours
#   kafka_up             starts the cluster unless it runs; sets $bootstrap and
#                        $kafka_started (1 when started here, so kafka_down stops it)
#   kafka_down           stops the cluster if kafka_up started it
#   $awk_median          an awk function median(list) of a space-separated list
here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/interop/bench"
mkdir -p "$out"
ctl="$here/kafka/kafka-cluster.sh"

say() { echo "==> $*" >&2; }

build_example() {
    say "building $1 (release)"
    cargo build --release --quiet --all-features --example "$1" --manifest-path "$root/Cargo.toml"
    ours="$root/target/release/examples/$1"
}

kafka_started=0
kafka_up() {
    # Status captured first: under pipefail a pipe closed early could fail it.
    local st
    st="$("$ctl" status)"
    [[ "$st" == *"node 1 up"* ]] || kafka_started=1
    bootstrap="$("$ctl" start)"
}
kafka_down() {
    if [ "$kafka_started" = 1 ]; then "$ctl" stop >/dev/null 2>&1 || true; fi
}

awk_median='
    function median(list,   a, m, i, j, t) {
        m = split(list, a, " ")
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }'
