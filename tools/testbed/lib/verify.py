#!/usr/bin/env python3
"""Check testbed captures against their truth files with tshark.

For every OUTDIR/<scenario>.truth.json with its pcap, runs independent tshark dissections
and compares them with what the lab's own logs say happened:

  capture    packet count and link type match the truth's pcap summary
  igmp       every join/leave the receivers made shows up as an IGMP message from that
             receiver for that group (IGMPv2 report/leave, IGMPv3 TO_EX/TO_IN records)
  http       the cleartext HTTP requests tshark sees are exactly the nginx access-log
             entries of scheme http (same client address/port, method, URI)
  tls        ClientHello SNI counts per name equal the players' TLS connections per host
  dns        queries for the lab names equal dnsmasq's query log
  mpegts     each UDP channel decodes as MPEG-TS at its mux rate (7 TS packets a datagram)
  rtp        each RTP channel decodes as PT 33 (MP2T) at its mux rate; -z rtp,streams
  receivers  datagrams each receiver counted equal the captured datagrams while joined
  loss       missing RTP sequence numbers / CC drops fall inside the loss window only,
             and the RTP ones equal the iptables drop counter
  takedown   RSTs from the taken-down name's :443 fall inside the window only, and the
             SYNs it refused equal the players' failed connects
  credentials  the cleartext capture does carry the credentials (so an analyzer test that
             checks they never reach its output is meaningful)

Prints the figures and a closing "N passed, N failed" line; exits 1 on any mismatch.
"""

import glob
import json
import os
import re
import subprocess
import sys
from collections import Counter


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, scen, name, ok, detail):
        tag = "PASS" if ok else "FAIL"
        print("  [%s] %-12s %s" % (tag, name, detail))
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def tshark(pcap, *args):
    cmd = ["tshark", "-n", "-r", pcap] + list(args)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("tshark failed: %s\n%s" % (" ".join(cmd), r.stderr))
    return r.stdout


def fields(pcap, flt, flds, extra=()):
    args = list(extra) + ["-Y", flt, "-T", "fields", "-E", "separator=\t"]
    for f in flds:
        args += ["-e", f]
    out = []
    for ln in tshark(pcap, *args).splitlines():
        parts = ln.split("\t")
        parts += [""] * (len(flds) - len(parts))
        out.append(parts)
    return out


def in_window(t, w):
    return w[0] <= t <= w[1]


def verify(path, ck):
    with open(path) as f:
        truth = json.load(f)
    if truth.get("generator") != "testbed":
        print("== %s: not a testbed truth file (generator %r), skipped" % (path, truth.get("generator")))
        return
    scen = truth["scenario"]
    pcap = os.path.join(os.path.dirname(path), truth["capture"]["file"])
    print("== %s (%s, %d bytes)" % (scen, pcap, os.path.getsize(pcap) if os.path.exists(pcap) else -1))
    if not os.path.exists(pcap):
        ck.check(scen, "capture", False, "pcap missing")
        return
    creds = {c["kind"]: c["value"] for c in truth["credentials"]}
    user, pw = creds.get("username", ""), creds.get("password", "")

    def redact(s):
        return s.replace(user, "{user}").replace(pw, "{pass}") if user else s

    # capture ---------------------------------------------------------------------
    frames = fields(pcap, "frame", ["frame.time_epoch", "frame.len", "eth.type"])
    n = len(frames)
    big = sum(1 for fr in frames if int(fr[1]) > 1518)
    ck.check(scen, "capture", n == truth["capture"]["packets"] and truth["capture"]["link_type"] == 1 and big == 0,
             "%d frames (truth %d), link type %d, %d frames over 1518 bytes"
             % (n, truth["capture"]["packets"], truth["capture"]["link_type"], big))
    badck = fields(pcap, "tcp.checksum.status==0 || udp.checksum.status==0 || ip.checksum.status==0",
                   ["frame.number"], ["-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                                      "-o", "ip.check_checksum:TRUE"])
    ck.check(scen, "checksums", len(badck) == 0, "%d frames with a bad IP/TCP/UDP checksum" % len(badck))

    # igmp ------------------------------------------------------------------------
    mev = truth.get("multicast_events", [])
    if mev:
        msgs = []  # (t, src, group, kind)
        for t, src, ver, typ, maddr, rtypes, nsrc in fields(
                pcap, "igmp", ["frame.time_epoch", "ip.src", "igmp.version", "igmp.type",
                               "igmp.maddr", "igmp.record_type", "igmp.num_src"]):
            t = float(t)
            if typ == "0x16":
                msgs.append((t, src, maddr, "join"))
            elif typ == "0x17":
                msgs.append((t, src, maddr, "leave"))
            elif typ == "0x22":
                gs = maddr.split(",")
                rts = rtypes.split(",")
                for g, rt in zip(gs, rts):
                    # RFC 3376 section 4.2.12: 2 MODE_IS_EXCLUDE / 4 CHANGE_TO_EXCLUDE = join
                    # (any source); 1 MODE_IS_INCLUDE / 3 CHANGE_TO_INCLUDE with no source = leave
                    if rt in ("2", "4"):
                        msgs.append((t, src, g, "join"))
                    elif rt in ("1", "3"):
                        msgs.append((t, src, g, "leave"))
        unmatched = []
        for e in mev:
            hit = [m for m in msgs if m[1] == e["ipv4"] and m[2] == e["group"] and m[3] == e["event"]
                   and e["t"] - 0.05 <= m[0] <= e["t"] + 2.0]
            if not hit:
                unmatched.append(e)
        # every IGMP message about a lab group must follow a logged event (v2 repeats a
        # report up to 10 s later, RFC 2236 section 3 Unsolicited Report Interval)
        orphans = [m for m in msgs if m[2].startswith("239.77.") and not any(
            e["ipv4"] == m[1] and e["group"] == m[2] and e["event"] == m[3] and e["t"] - 0.05 <= m[0] <= e["t"] + 11
            for e in mev)]
        kinds = Counter(m[3] for m in msgs)
        tj = sum(1 for e in mev if e["event"] == "join")
        tl = sum(1 for e in mev if e["event"] == "leave")
        ck.check(scen, "igmp", not unmatched and not orphans,
                 "%d join and %d leave records on the wire for %d joins / %d leaves in truth; "
                 "%d truth events unmatched, %d wire records without an event"
                 % (kinds["join"], kinds["leave"], tj, tl, len(unmatched), len(orphans)))

    # http ------------------------------------------------------------------------
    wire = Counter()
    for t, s4, s6, sport, meth, uri, host in fields(
            pcap, "http.request", ["frame.time_epoch", "ip.src", "ipv6.src", "tcp.srcport",
                                   "http.request.method", "http.request.uri", "http.host"]):
        wire[(s4 or s6, int(sport), meth, redact(uri))] += 1
    logged = Counter((h["client"], h["client_port"], h["method"], h["path"])
                     for h in truth["http_log"] if h["scheme"] == "http")
    diff = (wire - logged) + (logged - wire)
    cred_wire = sum(v for k, v in wire.items() if "{user}" in k[3])
    cred_truth = sum(1 for h in truth["http_log"] if h["scheme"] == "http" and h["credential_bearing"])
    ck.check(scen, "http", not diff and cred_wire == cred_truth,
             "%d cleartext GETs on the wire, %d in the nginx log (%d differ); %d carry credentials (truth %d)"
             % (sum(wire.values()), sum(logged.values()), sum(diff.values()), cred_wire, cred_truth))

    # tls ---------------------------------------------------------------------------
    sni = Counter(r[0] for r in fields(pcap, "tls.handshake.type==1",
                                       ["tls.handshake.extensions_server_name"]))
    want = Counter(truth["summary"]["tls_connections_by_sni"])
    https_logged = sum(1 for h in truth["http_log"] if h["scheme"] == "https")
    ck.check(scen, "tls-sni", sni == want,
             "ClientHello SNI %s; players' TLS connections %s; %d HTTPS requests in the nginx log"
             % (dict(sni), dict(want), https_logged))

    # dns ---------------------------------------------------------------------------
    q = Counter()
    for s4, s6, name, qt in fields(pcap, "dns.flags.response==0", ["ip.src", "ipv6.src", "dns.qry.name", "dns.qry.type"]):
        q["%s %s %s" % (s4 or s6, {"1": "A", "28": "AAAA"}.get(qt, qt), name)] += 1
    want = Counter(truth["dns"]["queries"])
    ck.check(scen, "dns", q == want, "%d queries on the wire, %d in the dnsmasq log"
             % (sum(q.values()), sum(want.values())))

    # multicast streams -----------------------------------------------------------
    loss = [f for f in truth["faults"] if f["kind"] == "loss"]
    lw = (loss[0]["start_cmd_epoch"] - 0.05, loss[0]["end_epoch"] + 0.05) if loss else None
    for s in truth["streams"]:
        g, port = s["group"], s["port"]
        flt = "ip.dst==%s && udp.dstport==%d" % (g, port)
        if s["encap"] == "udp":
            rows = fields(pcap, flt, ["frame.time_epoch", "udp.length", "mp2t.pid"],
                          ["-d", "udp.port==%d,mp2t" % port])
            per = Counter(len(r[2].split(",")) for r in rows)
            last_n = len(rows[-1][2].split(",")) if rows else 0
            pay = [int(r[1]) - 8 for r in rows]
        else:
            rows = fields(pcap, flt, ["frame.time_epoch", "udp.length", "rtp.seq", "rtp.p_type", "rtp.ssrc"],
                          ["-d", "udp.port==%d,rtp" % port])
            per = Counter((int(r[1]) - 20) // 188 for r in rows)
            last_n = (int(rows[-1][1]) - 20) // 188 if rows else 0
            pay = [int(r[1]) - 20 for r in rows]
        if len(rows) < 2:
            ck.check(scen, "stream", False, "%s:%d: %d datagrams" % (g, port, len(rows)))
            continue
        t0, t1 = float(rows[0][0]), float(rows[-1][0])
        # bitrate from datagram n=1..N-1 over the span (the first one opens the interval)
        rate = sum(pay[1:]) * 8 / (t1 - t0)
        err = abs(rate - s["mux_rate_bps"]) / s["mux_rate_bps"]
        name = "mpegts" if s["encap"] == "udp" else "rtp"
        extra = ""
        if s["encap"] == "rtp":
            pts = Counter(r[3] for r in rows)
            extra = ", payload types %s, SSRCs %d" % (dict(pts), len(set(r[4] for r in rows)))
        ts_rows = fields(pcap, flt + " && mp2t", ["frame.number"], ["-d", "udp.port==%d,%s" % (port, "mp2t" if s["encap"] == "udp" else "rtp")])
        # the head-end flushes a short datagram when it is stopped at the end of the run
        full = Counter(per)
        full[last_n] -= 1
        full = +full
        ck.check(scen, name, err < 0.05 and set(full) == {s["ts_per_datagram"]} and len(ts_rows) == len(rows),
                 "%s:%d %s: %d datagrams (%d decode as MPEG-TS), %s TS packets each but the last (%d), "
                 "%.1f kbit/s of TS vs mux rate %d kbit/s (%.1f%%)%s"
                 % (g, port, s["encap"], len(rows), len(ts_rows), sorted(full), last_n, rate / 1000,
                    s["mux_rate_bps"] // 1000, err * 100, extra))
        # sequence / continuity
        if s["encap"] == "rtp":
            out = tshark(pcap, "-q", "-d", "udp.port==%d,rtp" % port, "-z", "rtp,streams")
            line = [ln for ln in out.splitlines() if g in ln]
            lost_z = None
            if line:
                m = re.search(r"\s(\d+)\s+\(([-\d.]+)%\)", line[0])
                lost_z = int(m.group(1)) if m else None
            gaps = []
            prev = None
            for r in rows:
                seq = int(r[2])
                if prev is not None:
                    miss = (seq - prev - 1) & 0xFFFF
                    if 0 < miss < 0x8000:
                        gaps.append((float(r[0]), miss))
                prev = seq
            total = sum(m for _, m in gaps)
            if lw:
                inside = sum(m for t, m in gaps if in_window(t, (lw[0], lw[1] + 1.0)))
                dropped = loss[0].get("dropped_packets", {}).get("%s:%d" % (g, port))
                ck.check(scen, "rtp-loss", inside > 0 and inside == total and inside == dropped and lost_z == total,
                         "%s: %d RTP sequence numbers missing inside the loss window [%.3f, %.3f], %d outside; "
                         "iptables dropped %s; -z rtp,streams lost %s"
                         % (g, inside, lw[0], lw[1], total - inside, dropped, lost_z))
            else:
                ck.check(scen, "rtp-seq", total == 0 and lost_z == 0,
                         "%s: %d missing RTP sequence numbers (-z rtp,streams lost %s)" % (g, total, lost_z))
        ccd = [float(r[0]) for r in fields(pcap, flt + " && mp2t.cc.drop", ["frame.time_epoch"],
                                           ["-d", "udp.port==%d,%s" % (port, "mp2t" if s["encap"] == "udp" else "rtp")])]
        if lw:
            inside = sum(1 for t in ccd if in_window(t, (lw[0], lw[1] + 1.0)))
            dropped = loss[0].get("dropped_packets", {}).get("%s:%d" % (g, port))
            ck.check(scen, "cc-loss", (inside > 0) == (dropped > 0) and inside == len(ccd),
                     "%s: %d datagrams with MPEG-TS CC drops inside the loss window, %d outside (iptables dropped %s)"
                     % (g, inside, len(ccd) - inside, dropped))
        else:
            ck.check(scen, "cc", len(ccd) == 0, "%s: %d datagrams with MPEG-TS continuity drops" % (g, len(ccd)))
        # receivers: what each counted while joined equals what crossed the bridge
        times = [float(r[0]) for r in rows]
        for rx in truth["receivers"]:
            for e in rx["events"]:
                if e["event"] != "leave" or e["group"] != g or not e.get("first_rx"):
                    continue
                seen = sum(1 for t in times if e["first_rx"] - 0.01 <= t <= e["last_rx"] + 0.01)
                ck.check(scen, "receiver", abs(seen - e["datagrams"]) <= 1,
                         "%s on %s: received %d datagrams, capture has %d in the same span; receiver saw %d RTP lost"
                         % (rx["name"], g, e["datagrams"], seen, e.get("rtp_lost", 0)))

    # takedown --------------------------------------------------------------------
    for f in truth["faults"]:
        if f["kind"] != "takedown":
            continue
        w = (f["start_cmd_epoch"] - 0.05, f["end_epoch"] + 0.05)
        a4, a6 = f["addresses"]
        rst = [float(r[0]) for r in fields(
            pcap, "tcp.flags.reset==1 && tcp.srcport==%d && (ip.src==%s || ipv6.src==%s)" % (f["port"], a4, a6),
            ["frame.time_epoch"])]
        inside = sum(1 for t in rst if in_window(t, w))
        rejected = f.get("rejected_ipv4_packets", 0) + f.get("rejected_ipv6_packets", 0)
        ck.check(scen, "takedown-rst", inside > 0 and inside == len(rst) and inside <= rejected,
                 "%s:%d: %d RSTs inside the window [%.3f, %.3f] (%.1f s), %d outside; iptables rejected %d packets"
                 % (f["target"], f["port"], inside, w[0], w[1], w[1] - w[0], len(rst) - inside, rejected))
        syn = [float(r[0]) for r in fields(
            pcap, "tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==%d && (ip.dst==%s || ipv6.dst==%s)"
            % (f["port"], a4, a6), ["frame.time_epoch"])]
        syn_in = sum(1 for t in syn if in_window(t, w))
        refused = sum(1 for c in truth["clients"] for e in c["events"]
                      if e["event"] == "connect" and not e["ok"] and e["host"] == f["target"])
        ck.check(scen, "takedown-syn", syn_in == refused and refused > 0,
                 "%d SYNs to %s:%d inside the window, %d players' connects refused; %d SYNs outside"
                 % (syn_in, f["target"], f["port"], refused, len(syn) - syn_in))
        sw = [(c["name"], s["to"]) for c in truth["clients"] for s in c["summary"]["host_switches"]]
        ck.check(scen, "takedown-sw", all(in_window(s["t"], (w[0], w[1] + 10)) for c in truth["clients"]
                                          for s in c["summary"]["host_switches"]),
                 "host switches %s; requests ok/failed per player %s"
                 % (sw, {c["name"]: (c["summary"]["requests_ok"], c["summary"]["requests_failed"]) for c in truth["clients"]}))

    # credentials -----------------------------------------------------------------
    if user:
        nu = len(fields(pcap, 'frame contains "%s"' % user, ["frame.number"]))
        npw = len(fields(pcap, 'frame contains "%s"' % pw, ["frame.number"]))
        want = truth["summary"]["credential_bearing_requests"] > 0
        ck.check(scen, "credentials", (nu > 0 and npw > 0) == want,
                 "username in %d frames, password in %d frames of the capture (truth: %d credential-bearing requests)"
                 % (nu, npw, truth["summary"]["credential_bearing_requests"]))


def main():
    if len(sys.argv) != 2:
        print("usage: verify.py OUTDIR", file=sys.stderr)
        return 64
    files = sorted(glob.glob(os.path.join(sys.argv[1], "*.truth.json")))
    if not files:
        print("verify: no *.truth.json in %s" % sys.argv[1], file=sys.stderr)
        return 1
    ck = Checker()
    for p in files:
        try:
            verify(p, ck)
        except (RuntimeError, KeyError, ValueError, OSError) as e:
            ck.check(os.path.basename(p), "error", False, str(e))
    print("%d passed, %d failed" % (ck.passed, ck.failed))
    if ck.passed + ck.failed == 0:
        print("verify: no testbed capture was checked", file=sys.stderr)
        return 1
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())
