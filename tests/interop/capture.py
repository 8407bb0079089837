#!/usr/bin/env python3
"""Capture Kafka protocol frames between a real client and a real broker.

Every complete frame, in both directions, is written as its own file (the frame
bytes WITHOUT the 4-byte size prefix). Responses are paired with their request by
correlation id (per connection), which tells their API key and version.

Two ways to see the traffic, both on loopback:

  proxy  A TCP proxy: clients connect to --listen, bytes go to --upstream.
         Every connection through it is captured. With a broker that lets you set
         its advertised address (tansu: --advertised-listener-url), advertise the
         proxy so that all of the client's connections pass through it.

  sniff  A passive AF_PACKET sniffer on `lo` (needs root / CAP_NET_RAW) for the
         given TCP ports. Nothing is proxied or rewritten, so it also sees the
         connections a client opens to the addresses a broker advertises in
         Metadata (librdkafka's mock cluster advertises its own ports).

File names:  {prefix}_{req|resp}_{ApiName}_v{version}_corr{correlation_id}.bin
             (+ `_c{connection}` when the same name was already taken by an
             earlier connection). An index of all frames, in order, is written to
             {out}/{prefix}_index.jsonl.

Fault injection (proxy only): with --control the proxy reads commands on stdin,
one per line, each answered `OK [...]` or `ERR reason`:
  drop_produce_responses N   the next N Produce responses are swallowed after
                             the broker answered (it has appended) and the
                             client's connection is closed: a lost response
  dropped                    `OK <count>` of responses dropped so far
  ping / quit (or EOF)
The first stdout line is always `LISTEN host:port`.

Both modes run until SIGINT/SIGTERM (or --duration seconds, or quit/EOF with
--control). The module is also
imported by make_vectors.py, which runs the capture scenarios end to end.
"""
import argparse
import hashlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 4: "LeaderAndIsr",
    5: "StopReplica", 6: "UpdateMetadata", 7: "ControlledShutdown",
    8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup",
    12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups",
    16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics",
    20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId",
    23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn",
    26: "EndTxn", 27: "WriteTxnMarkers", 28: "TxnOffsetCommit",
    29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls", 32: "DescribeConfigs",
    33: "AlterConfigs", 36: "SaslAuthenticate", 37: "CreatePartitions",
    42: "DeleteGroups", 44: "IncrementalAlterConfigs", 60: "DescribeCluster",
    61: "DescribeProducers", 68: "ConsumerGroupHeartbeat",
    71: "GetTelemetrySubscriptions", 72: "PushTelemetry", 75: "DescribeTopicPartitions",
}

MAX_FRAME = 256 * 1024 * 1024


def api_name(key):
    return API_NAMES.get(key, "Api%d" % key)


class FrameLog:
    """Writes frames to files and keeps the index; thread-safe."""

    def __init__(self, out, prefix, verbose=True):
        self.out = out
        self.prefix = prefix
        self.verbose = verbose
        self.lock = threading.Lock()
        self.index = []
        self.names = set()
        self.next_conn = 0
        if out is not None:
            os.makedirs(out, exist_ok=True)

    def new_conn(self, desc):
        with self.lock:
            self.next_conn += 1
            n = self.next_conn
        if self.verbose:
            print("capture: connection %d: %s" % (n, desc), file=sys.stderr, flush=True)
        return Conn(self, n, desc)

    def write(self, conn, direction, key, version, corr, frame, note=None):
        if self.out is None:
            return  # fault proxy only: nothing recorded
        kind = "req" if direction == "c2s" else "resp"
        if key is None:
            base = "%s_%s_unpaired_corr%d" % (self.prefix, kind, corr)
        else:
            base = "%s_%s_%s_v%d_corr%d" % (self.prefix, kind, api_name(key), version, corr)
        with self.lock:
            name = base + ".bin"
            if name in self.names:
                name = "%s_c%d.bin" % (base, conn.n)
                i = 2
                while name in self.names:
                    name = "%s_c%d_%d.bin" % (base, conn.n, i)
                    i += 1
            self.names.add(name)
            if self.out is not None:
                with open(os.path.join(self.out, name), "wb") as f:
                    f.write(frame)
            entry = {
                "seq": len(self.index) + 1,
                "conn": conn.n,
                "peer": conn.desc,
                "dir": direction,
                "api_key": key,
                "api": api_name(key) if key is not None else None,
                "version": version,
                "corr": corr,
                "len": len(frame),
                "sha256": hashlib.sha256(frame).hexdigest(),
                "file": name,
            }
            if note:
                entry["note"] = note
            self.index.append(entry)
        if self.verbose:
            print("capture: %-4s conn %d %s" % (kind, conn.n, name), file=sys.stderr, flush=True)

    def write_index(self):
        if self.out is None:
            return None
        with self.lock:
            path = os.path.join(self.out, "%s_index.jsonl" % self.prefix)
            with open(path, "w") as f:
                for e in self.index:
                    f.write(json.dumps(e, sort_keys=True) + "\n")
        return path


class Conn:
    """One TCP connection: deframes both directions, pairs by correlation id."""

    def __init__(self, log, n, desc):
        self.log = log
        self.n = n
        self.desc = desc
        self.buf = {"c2s": bytearray(), "s2c": bytearray()}
        self.pending = {}  # corr -> (api_key, api_version)
        self.lock = threading.Lock()
        self.dead = set()  # directions whose framing was lost

    def feed(self, direction, data):
        """Returns [(frame, api_key or None)] for the frames completed by data."""
        done = []
        with self.lock:
            if direction in self.dead:
                return done
            b = self.buf[direction]
            b += data
            while len(b) >= 4:
                (size,) = struct.unpack_from(">i", b, 0)
                if size < 0 or size > MAX_FRAME:
                    print("capture: conn %d %s: bad frame size %d, stop parsing"
                          % (self.n, direction, size), file=sys.stderr)
                    b.clear()
                    self.dead.add(direction)
                    return done
                if len(b) < 4 + size:
                    break
                frame = bytes(b[4:4 + size])
                del b[:4 + size]
                done.append((frame, self._frame(direction, frame)))
        return done

    def _frame(self, direction, frame):
        if direction == "c2s":
            if len(frame) < 8:
                self.log.write(self, direction, None, None, -1, frame, "short request")
                return
            key, ver, corr = struct.unpack_from(">hhi", frame, 0)
            self.pending[corr] = (key, ver)
            self.log.write(self, direction, key, ver, corr, frame)
            return key
        else:
            if len(frame) < 4:
                self.log.write(self, direction, None, None, -1, frame, "short response")
                return
            (corr,) = struct.unpack_from(">i", frame, 0)
            kv = self.pending.pop(corr, None)
            if kv is None:
                self.log.write(self, direction, None, None, corr, frame, "no request with this corr")
                return None
            self.log.write(self, direction, kv[0], kv[1], corr, frame)
            return kv[0]


# ----------------------------------------------------------------------------
# proxy mode

class Proxy:
    def __init__(self, log, listen, upstream):
        self.log = log
        self.upstream = upstream
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(listen)
        self.sock.listen(64)
        self.addr = self.sock.getsockname()
        self.stopping = False
        self.threads = []
        # Fault injection: the next `drop_produce` Produce responses are
        # swallowed after the broker answered (so it has appended) and the
        # client's connection is closed: a lost response, the case idempotence
        # exists for.
        self.drop_produce = 0
        self.dropped = 0
        self.fault_lock = threading.Lock()

    def arm_drop(self, n):
        with self.fault_lock:
            self.drop_produce += n

    def _take_drop(self):
        with self.fault_lock:
            if self.drop_produce > 0:
                self.drop_produce -= 1
                self.dropped += 1
                return True
            return False

    def start(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        return self

    def _accept(self):
        while not self.stopping:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c, peer), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, c, peer):
        try:
            u = socket.create_connection(self.upstream, timeout=10)
        except OSError as e:
            print("capture: upstream %s:%d: %s" % (self.upstream + (e,)), file=sys.stderr)
            c.close()
            return
        u.settimeout(None)
        for s in (c, u):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = self.log.new_conn("%s:%d -> proxy -> %s:%d" % (peer + self.upstream))
        pairs = {c: (u, "c2s"), u: (c, "s2c")}
        open_ = {c, u}
        try:
            while open_:
                r, _, _ = select.select(list(open_), [], [], 0.5)
                if self.stopping:
                    break
                for s in r:
                    try:
                        data = s.recv(1 << 20)
                    except OSError:
                        data = b""
                    dst, direction = pairs[s]
                    if not data:
                        open_.discard(s)
                        try:
                            dst.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        if direction == "s2c" or not open_:
                            open_.clear()
                        continue
                    # Log before forwarding so a response is never seen before
                    # its request. Requests go on as raw bytes; responses are
                    # forwarded frame by frame so one can be dropped.
                    frames = conn.feed(direction, data)
                    try:
                        if direction == "c2s" or direction in conn.dead:
                            dst.sendall(data)
                            continue
                        for frame, key in frames:
                            if key == 0 and self._take_drop():
                                print("capture: conn %d: dropping a Produce response "
                                      "and closing the client connection" % conn.n,
                                      file=sys.stderr, flush=True)
                                open_.clear()
                                break
                            dst.sendall(struct.pack(">i", len(frame)) + frame)
                    except OSError:
                        open_.clear()
        finally:
            c.close()
            u.close()

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass


# ----------------------------------------------------------------------------
# sniff mode

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class Sniffer:
    """Reassembles TCP byte streams on `lo` for a set of server ports."""

    def __init__(self, log, ports):
        self.log = log
        self.ports = set(ports)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.flows = {}  # (client_ip, client_port, server_ip, server_port) -> state
        self.stopping = False
        self.thread = None
        self.ready = threading.Event()

    def add_ports(self, ports):
        self.ports |= set(ports)

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        # Drain what the kernel already queued, then stop.
        time.sleep(0.3)
        self.stopping = True
        if self.thread:
            self.thread.join()
        self.sock.close()

    def _run(self):
        while True:
            try:
                pkt, addr = self.sock.recvfrom(1 << 18)
            except socket.timeout:
                if self.stopping:
                    return
                continue
            except OSError:
                return
            if addr[2] == PACKET_OUTGOING:
                continue  # lo shows each packet twice; keep the incoming copy
            self._packet(pkt)

    def _packet(self, pkt):
        # lo: 14-byte zero Ethernet header
        if len(pkt) < 14 + 20 or struct.unpack_from(">H", pkt, 12)[0] != 0x0800:
            return
        ip = 14
        ihl = (pkt[ip] & 0x0F) * 4
        if pkt[ip + 9] != 6:  # TCP
            return
        total = struct.unpack_from(">H", pkt, ip + 2)[0]
        src = socket.inet_ntoa(pkt[ip + 12:ip + 16])
        dst = socket.inet_ntoa(pkt[ip + 16:ip + 20])
        tcp = ip + ihl
        sport, dport, seq = struct.unpack_from(">HHI", pkt, tcp)
        off = (pkt[tcp + 12] >> 4) * 4
        flags = pkt[tcp + 13]
        payload = pkt[tcp + off:ip + total]
        if dport in self.ports:
            key, direction = (src, sport, dst, dport), "c2s"
        elif sport in self.ports:
            key, direction = (dst, dport, src, sport), "s2c"
        else:
            return
        syn, ack = flags & 0x02, flags & 0x10
        st = self.flows.get(key)
        if syn:
            if direction == "c2s" and not ack:
                # a new connection (or a reused 4-tuple): start afresh
                st = {"conn": self.log.new_conn("%s:%d -> %s:%d" % key),
                      "next": {}, "ooo": {"c2s": {}, "s2c": {}}}
                self.flows[key] = st
            if st is not None:
                st["next"][direction] = (seq + 1) & 0xFFFFFFFF
            return
        if st is None or direction not in st["next"] or not payload:
            return
        self._data(st, direction, seq, bytes(payload))

    def _data(self, st, direction, seq, payload):
        nxt = st["next"][direction]
        d = (seq - nxt) & 0xFFFFFFFF
        if d >= 0x80000000:  # starts before nxt: retransmission / overlap
            skip = (nxt - seq) & 0xFFFFFFFF
            if skip >= len(payload):
                return
            payload = payload[skip:]
            seq = nxt
            d = 0
        if d > 0:  # a gap: keep it until the gap is filled
            st["ooo"][direction][seq] = payload
            return
        st["conn"].feed(direction, payload)
        nxt = (seq + len(payload)) & 0xFFFFFFFF
        ooo = st["ooo"][direction]
        while nxt in ooo:
            p = ooo.pop(nxt)
            st["conn"].feed(direction, p)
            nxt = (nxt + len(p)) & 0xFFFFFFFF
        st["next"][direction] = nxt


def control_loop(proxy, done):
    """stdin commands, one per line, each answered `OK [...]` or `ERR reason`."""
    for line in sys.stdin:
        w = line.split()
        if not w:
            continue
        if w[0] in ("quit", "exit"):
            break
        if w[0] == "ping":
            print("OK", flush=True)
        elif w[0] == "drop_produce_responses" and len(w) == 2 and w[1].isdigit():
            proxy.arm_drop(int(w[1]))
            print("OK", flush=True)
        elif w[0] == "dropped":
            print("OK %d" % proxy.dropped, flush=True)
        else:
            print("ERR unknown command or bad arguments: %s" % line.strip(), flush=True)
    done.set()


def hostport(s):
    host, _, port = s.rpartition(":")
    return (host or "127.0.0.1", int(port))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("proxy", help="TCP proxy that logs frames")
    p.add_argument("--listen", required=True, help="HOST:PORT to listen on (port 0 = any)")
    p.add_argument("--upstream", required=True, help="broker HOST:PORT")
    p.add_argument("--control", action="store_true",
                   help="read commands on stdin (drop_produce_responses N, dropped, ping, quit)")
    s = sub.add_parser("sniff", help="passive capture on lo (root)")
    s.add_argument("--ports", required=True, help="comma-separated server ports")
    for x in (p, s):
        x.add_argument("--out", default=None,
                       help="directory for the frame files (none: write nothing, e.g. fault proxy only)")
        x.add_argument("--prefix", default="capture", help="file name prefix")
        x.add_argument("--duration", type=float, default=None, help="stop after N seconds")
        x.add_argument("--quiet", action="store_true")
    a = ap.parse_args()

    log = FrameLog(a.out, a.prefix, verbose=not a.quiet)
    if a.mode == "proxy":
        runner = Proxy(log, hostport(a.listen), hostport(a.upstream)).start()
        print("LISTEN %s:%d" % runner.addr, flush=True)
    else:
        runner = Sniffer(log, [int(x) for x in a.ports.split(",") if x]).start()
        print("SNIFFING", flush=True)

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    if a.mode == "proxy" and a.control:
        threading.Thread(target=control_loop, args=(runner, done), daemon=True).start()
    done.wait(a.duration)
    runner.stop()
    if a.out is not None:
        print("capture: index %s (%d frames)" % (log.write_index(), len(log.index)), file=sys.stderr)


if __name__ == "__main__":
    main()
