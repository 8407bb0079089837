#!/usr/bin/env bash
# Stops the tansu broker started by start-tansu.sh (the pid in
# target/interop/tansu.pid only). Idempotent: no broker, nothing to do.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="$(cd "$here/../.." && pwd)/target/interop"
pidf="$state/tansu.pid"
[ -f "$pidf" ] || exit 0
pid="$(cat "$pidf")"
if kill -0 "$pid" 2>/dev/null; then
    echo "stop-tansu: stopping tansu (pid $pid)" >&2
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop-tansu: pid $pid ignored SIGTERM; SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
fi
rm -f "$pidf" "$state/tansu.addr"
