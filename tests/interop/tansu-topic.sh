#!/usr/bin/env bash
# Creates a topic on a tansu broker (tansu does not auto-create topics).
#   tests/interop/tansu-topic.sh NAME PARTITIONS [HOST:PORT]
# HOST:PORT defaults to target/interop/tansu.addr (written by start-tansu.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="$(cd "$here/../.." && pwd)/target/interop"
export PATH="$HOME/.cargo/bin:$PATH"
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 NAME PARTITIONS [HOST:PORT]" >&2
    exit 2
fi
addr="${3:-$(cat "$state/tansu.addr")}"
# An empty cwd: tansu reads ./.env
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
tansu topic create "$1" --partitions "$2" --broker "tcp://$addr" >&2
echo "tansu-topic: created $1 with $2 partitions on $addr" >&2
