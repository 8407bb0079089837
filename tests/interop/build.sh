#!/usr/bin/env bash
# Builds the C interop helpers against Debian's librdkafka-dev:
#   target/interop/rdkafka_mock   (mock cluster controlled over stdin)
#   target/interop/rdkafka_perf   (librdkafka producer benchmark)
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
    if [ -x "$bin" ] && [ "$bin" -nt "$src" ] && [ "$bin" -nt "$here/build.sh" ]; then
        echo "build.sh: $bin up to date"
        return
    fi
    echo "build.sh: $CC $src -> $bin"
    # shellcheck disable=SC2086
    "$CC" $CFLAGS -o "$bin.tmp" "$src" "${libs[@]}" -lm -lpthread
    mv -f "$bin.tmp" "$bin"
}

build rdkafka_mock
build rdkafka_perf

# Optional: the same benchmark linked against the newer librdkafka bundled in the
# confluent-kafka wheel (the C API is backwards compatible with the 2.0.2
# headers), to compare with the librdkafka version confluent-kafka uses.
bundled="$(python3 - 2>/dev/null <<'PY' || true
import glob, os
try:
    import confluent_kafka
except ImportError:
    raise SystemExit
d = os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)), "confluent_kafka.libs")
libs = sorted(glob.glob(os.path.join(d, "librdkafka*.so*")))
print(libs[0] if libs else "")
PY
)"
if [ -n "$bundled" ]; then
    build rdkafka_perf rdkafka_perf_bundled "$bundled" "-Wl,-rpath,$(dirname "$bundled")"
else
    echo "build.sh: no confluent-kafka bundled librdkafka; skipping rdkafka_perf_bundled"
fi
