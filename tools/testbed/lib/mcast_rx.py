#!/usr/bin/env python3
"""Lab multicast receiver: joins and leaves IPTV groups on a schedule, like a set-top box zapping.

Runs inside a receiver network namespace. Each join is IP_ADD_MEMBERSHIP and each leave
IP_DROP_MEMBERSHIP on a UDP socket bound to the group and port, so the IGMP reports and
leaves on the wire come from the kernel (IGMPv3 by default, IGMPv2 when the namespace sets
net.ipv4.conf.<if>.force_igmp_version=2; RFC 3376 section 5.1 / RFC 2236 section 3).

While joined it reads the stream and counts datagrams, bytes, and, for RTP (RFC 3550
section 5.1), the sequence numbers that never arrived. One JSON object per line is written
to --log with wall-clock epoch timestamps (the same clock as the capture).

Schedule: --at OFFSET:join:GROUP:PORT:ENCAP and --at OFFSET:leave:GROUP:PORT, offsets in
seconds after --t0. A zap is a leave followed immediately by a join.
"""

import argparse
import json
import select
import socket
import struct
import sys
import time


class Membership:
    def __init__(self, group, port, encap, iface):
        self.group = group
        self.port = port
        self.encap = encap
        self.iface = iface
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((group, port))
        self.mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(iface))
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, self.mreq)
        self.sock.setblocking(False)
        self.datagrams = 0
        self.bytes = 0
        self.first = None
        self.last = None
        self.rtp_last_seq = None
        self.rtp_lost = 0
        self.rtp_gaps = []
        self.rtp_ssrc = None

    def drain(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            now = time.time()
            if self.first is None:
                self.first = now
            self.last = now
            self.datagrams += 1
            self.bytes += len(data)
            if self.encap == "rtp" and len(data) >= 12 and (data[0] >> 6) == 2:
                seq = struct.unpack_from("!H", data, 2)[0]
                self.rtp_ssrc = struct.unpack_from("!I", data, 8)[0]
                if self.rtp_last_seq is not None:
                    gap = (seq - self.rtp_last_seq - 1) & 0xFFFF
                    if 0 < gap < 0x8000:
                        self.rtp_lost += gap
                        self.rtp_gaps.append({"t": round(now, 6), "after_seq": self.rtp_last_seq,
                                              "missing": gap})
                self.rtp_last_seq = seq

    def leave(self):
        self.drain()
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, self.mreq)
        self.sock.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--iface-ip", required=True)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--at", action="append", default=[])
    a = p.parse_args()
    sched = []
    for item in a.at:
        parts = item.split(":")
        off, action, group, port = float(parts[0]), parts[1], parts[2], int(parts[3])
        encap = parts[4] if len(parts) > 4 else "udp"
        sched.append((a.t0 + off, action, group, port, encap))
    sched.sort(key=lambda x: x[0])
    log = open(a.log, "a", buffering=1)

    def ev(event, **kw):
        rec = {"t": round(time.time(), 6), "receiver": a.name, "event": event}
        rec.update(kw)
        log.write(json.dumps(rec, sort_keys=True) + "\n")

    ev("start", iface_ip=a.iface_ip)
    joined = {}
    i = 0
    while i < len(sched) or joined:
        now = time.time()
        while i < len(sched) and sched[i][0] <= now:
            _, action, group, port, encap = sched[i]
            key = (group, port)
            if action == "join" and key not in joined:
                joined[key] = Membership(group, port, encap, a.iface_ip)
                ev("join", group=group, port=port, encap=encap)
            elif action == "leave" and key in joined:
                m = joined.pop(key)
                m.leave()
                ev("leave", group=group, port=port, encap=m.encap, datagrams=m.datagrams,
                   bytes=m.bytes, first_rx=m.first and round(m.first, 6),
                   last_rx=m.last and round(m.last, 6), rtp_lost=m.rtp_lost,
                   rtp_gaps=m.rtp_gaps, rtp_ssrc=m.rtp_ssrc)
            i += 1
        if i >= len(sched) and not joined:
            break
        timeout = 0.2
        if i < len(sched):
            timeout = max(0.0, min(timeout, sched[i][0] - time.time()))
        socks = [m.sock for m in joined.values()]
        if socks:
            r, _, _ = select.select(socks, [], [], timeout)
            for m in joined.values():
                if m.sock in r:
                    m.drain()
        else:
            time.sleep(timeout)
    ev("stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
