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
    local name="$1"
    local src="$here/$name.c" bin="$out/$name"
    if [ -x "$bin" ] && [ "$bin" -nt "$src" ] && [ "$bin" -nt "$here/build.sh" ]; then
        echo "build.sh: $bin up to date"
        return
    fi
    echo "build.sh: $CC $src -> $bin"
    # shellcheck disable=SC2086
    "$CC" $CFLAGS -o "$bin.tmp" "$src" -lrdkafka -lm -lpthread
    mv -f "$bin.tmp" "$bin"
}

build rdkafka_mock
if [ -f "$here/rdkafka_perf.c" ]; then
    build rdkafka_perf
fi
