#!/usr/bin/env bash
# Starts one tansu 0.6.0 broker (memory storage) on loopback for interop tests.
#
#   tests/interop/start-tansu.sh [--port PORT] [--advertise HOST:PORT]
#
# - Installs tansu when `tansu --version` does not answer
#   (cargo install tansu --version 0.6.0 --features dynostore, ~10 min; waits for
#   an install that is already running instead of starting a second one).
# - Idempotent: when the broker recorded in target/interop/tansu.pid is alive and
#   accepting, it just prints its address again.
# - Port: --port, else $TANSU_PORT, else 19092 when free, else a free port.
#   --advertise sets --advertised-listener-url (e.g. a capture/fault proxy's
#   address); default: the listener address itself.
# - Runs in an empty working directory (tansu reads ./.env), logs to
#   target/interop/tansu/tansu.log, writes target/interop/tansu.pid and
#   target/interop/tansu.addr (HOST:PORT).
# Prints exactly the address (127.0.0.1:PORT) on stdout; progress on stderr.
# Stop it with tests/interop/stop-tansu.sh; create topics with
# tests/interop/tansu-topic.sh NAME PARTITIONS.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state="$root/target/interop"
pidf="$state/tansu.pid"
addrf="$state/tansu.addr"
TANSU_VERSION="0.6.0"
export PATH="$HOME/.cargo/bin:$PATH"

say() { echo "start-tansu: $*" >&2; }

port=""
advertise=""
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --advertise) advertise="$2"; shift 2 ;;
        *) say "unknown argument $1"; exit 2 ;;
    esac
done
port="${port:-${TANSU_PORT:-}}"

accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tansu_ok() { command -v tansu >/dev/null 2>&1 && tansu --version >/dev/null 2>&1; }

ensure_tansu() {
    if tansu_ok; then
        return
    fi
    if pgrep -f "cargo install tansu" >/dev/null 2>&1; then
        say "a 'cargo install tansu' is already running; waiting for it (up to 30 min)"
        for _ in $(seq 1 1800); do
            pgrep -f "cargo install tansu" >/dev/null 2>&1 || break
            sleep 1
        done
        if tansu_ok; then
            return
        fi
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        say "tansu missing and no cargo to install it"
        exit 1
    fi
    say "installing tansu $TANSU_VERSION (cargo install, ~10 minutes)"
    cargo install tansu --version "$TANSU_VERSION" --features dynostore >&2
    tansu_ok || { say "tansu installed but 'tansu --version' fails"; exit 1; }
}

# Already running?
if [ -f "$pidf" ] && [ -f "$addrf" ]; then
    pid="$(cat "$pidf")"
    addr="$(cat "$addrf")"
    if kill -0 "$pid" 2>/dev/null && accepting "${addr##*:}"; then
        say "tansu already running (pid $pid) at $addr"
        echo "$addr"
        exit 0
    fi
    say "stale state (pid $pid not serving); starting afresh"
    rm -f "$pidf" "$addrf"
fi

ensure_tansu
say "$(tansu --version 2>&1 | head -1)"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
if [ -z "$port" ]; then
    if accepting 19092; then port="$(free_port)"; else port=19092; fi
elif accepting "$port"; then
    say "port $port is already in use"
    exit 1
fi

addr="127.0.0.1:$port"
advertise="${advertise:-$addr}"
work="$state/tansu/work-$port"
rm -rf "$work"
mkdir -p "$work"
log="$state/tansu/tansu.log"
: >"$log"

say "starting tansu broker at $addr (advertised $advertise), memory storage, log $log"
(
    cd "$work"
    exec setsid tansu broker \
        --listener-url "tcp://$addr" \
        --advertised-listener-url "tcp://$advertise" \
        --storage-engine "memory://tansu/" \
        </dev/null >>"$log" 2>&1
) &
pid=$!

for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
        say "tansu exited during start-up; last log lines:"
        tail -20 "$log" >&2
        exit 1
    fi
    if accepting "$port"; then
        break
    fi
    sleep 0.1
done
if ! accepting "$port"; then
    say "tansu did not accept connections on $addr within 30 s"
    kill "$pid" 2>/dev/null || true
    exit 1
fi

echo "$pid" >"$pidf"
echo "$addr" >"$addrf"
say "tansu up (pid $pid)"
echo "$addr"
