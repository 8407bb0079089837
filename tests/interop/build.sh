#!/usr/bin/env bash
# Builds the C interop helpers against Debian's librdkafka-dev:
#   target/interop/rdkafka_mock   (mock cluster controlled over stdin)
#   target/interop/rdkafka_perf   (librdkafka producer benchmark)
# and, when the confluent-kafka wheel is installed, the same two programs
# linked against the current librdkafka it bundles (2.12 or later required):
#   target/interop/rdkafka_mock_current
#   target/interop/rdkafka_perf_bundled
# Idempotent: rebuilds only when a source is newer than its binary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/interop"
mkdir -p "$out"

if [ ! -f /usr/include/librdkafka/rdkafka_mock.h ]; then
    echo "build.sh: /usr/include/librdkafka/rdkafka_mock.h missing (apt-get install librdkafka-dev)" >&2
    exit 1
fi

CC="${CC:-gcc}"
CFLAGS="${CFLAGS:--O2 -g -Wall -Wextra -Werror -std=gnu11}"

build() {
    local name="$1" bin="$out/${2:-$1}"
    local src="$here/$name.c"
    shift $(( $# >= 2 ? 2 : 1 ))
    local libs=("$@")
    [ ${#libs[@]} -gt 0 ] || libs=(-lrdkafka)
    # The link line is part of the state: a reinstalled wheel can move the
    # bundled library to another file name.
    local deps="$CC $CFLAGS ${libs[*]}"
    if [ -x "$bin" ] && [ "$bin" -nt "$src" ] && [ "$bin" -nt "$here/build.sh" ] &&
        [ "$(cat "$bin.link" 2>/dev/null)" = "$deps" ]; then
        echo "build.sh: $bin up to date"
        return
    fi
    echo "build.sh: $CC $src -> $bin"
    # shellcheck disable=SC2086
    "$CC" $CFLAGS -o "$bin.tmp" "$src" "${libs[@]}" -lm -lpthread
    mv -f "$bin.tmp" "$bin"
    printf '%s\n' "$deps" >"$bin.link"
}

build rdkafka_mock
build rdkafka_perf

# Optional: the same programs linked against the current librdkafka bundled in
# the confluent-kafka wheel. The wheel ships the shared library (which exports
# the whole rd_kafka_mock_* API) but no headers; every function the two programs
# call has the same signature in 2.0.2's headers as in the current ones, so the
# Debian headers are used. The mock is only built from 2.12 on: older mocks
# are not "current" and would hide what the current one does differently.
bundled_info="$(python3 - 2>/dev/null <<'PY' || true
import glob, os
try:
    import confluent_kafka
except ImportError:
    raise SystemExit
d = os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)), "confluent_kafka.libs")
libs = sorted(glob.glob(os.path.join(d, "librdkafka*.so*")))
if libs:
    v = confluent_kafka.libversion()
    print(libs[0], v[0], v[1])
PY
)"
read -r bundled bundled_version bundled_int <<<"$bundled_info" || true
if [ -n "${bundled:-}" ]; then
    rpath=(-Wl,-rpath,"$(dirname "$bundled")")
    build rdkafka_perf rdkafka_perf_bundled "$bundled" "${rpath[@]}"
    if [ "$bundled_int" -ge $(( 0x020c0000 )) ]; then
        build rdkafka_mock rdkafka_mock_current "$bundled" "${rpath[@]}"
    else
        echo "build.sh: the confluent-kafka wheel bundles librdkafka $bundled_version (< 2.12); skipping rdkafka_mock_current (python3 -m pip install -U confluent-kafka)" >&2
        rm -f "$out/rdkafka_mock_current"
    fi
else
    echo "build.sh: no confluent-kafka bundled librdkafka; skipping rdkafka_perf_bundled and rdkafka_mock_current"
fi
