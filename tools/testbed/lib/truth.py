#!/usr/bin/env python3
"""Ground truth for testbed runs.

  truth.py content --www DIR --live DIR --segment-s S --variants "lo 256x144 15 80000 32000;..." --out F
      Writes each container's master playlist (RFC 8216 section 4.3.4.2) from the encoded
      renditions and a manifest of every segment file with its size and duration.
  truth.py build --workdir W --pcap P --out F
      Assembles the truth JSON of a finished run from the lab's own logs: topology,
      servers, content, nginx access log, player and receiver logs, faults, credentials.
"""

import argparse
import glob
import json
import os
import re
import struct
import sys

TRUTH_VERSION = 1


# --------------------------------------------------------------------------- content
def parse_media(path):
    init = None
    segs = []
    dur = None
    target = None
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if ln.startswith("#EXT-X-TARGETDURATION:"):
                target = int(ln.split(":", 1)[1])
            elif ln.startswith("#EXT-X-MAP:"):
                m = re.search(r'URI="([^"]+)"', ln)
                init = m.group(1) if m else None
            elif ln.startswith("#EXTINF:"):
                dur = float(ln.split(":", 1)[1].split(",")[0])
            elif ln and not ln.startswith("#"):
                segs.append((dur, ln))
                dur = None
    return target, init, segs


def cmd_content(a):
    variants = []
    for spec in a.variants.split(";"):
        if spec.strip():
            name, size, fps, vb, ab = spec.split()
            variants.append({"name": name, "resolution": size, "fps": int(fps),
                             "video_bps": int(vb), "audio_bps": int(ab)})
    out = {"hls": [], "progressive": []}
    for kind, container in (("ts", "mpegts"), ("fmp4", "fmp4")):
        lines = ["#EXTM3U", "#EXT-X-VERSION:%d" % (7 if kind == "fmp4" else 3),
                 "#EXT-X-INDEPENDENT-SEGMENTS"]
        for v in variants:
            d = os.path.join(a.www, "hls", kind, v["name"])
            target, init, segs = parse_media(os.path.join(d, "index.m3u8"))
            seg_list = []
            total_b = 0
            total_d = 0.0
            peak = 0
            for dur, uri in segs:
                b = os.path.getsize(os.path.join(d, uri))
                seg_list.append({"path": "/hls/%s/%s/%s" % (kind, v["name"], uri), "bytes": b,
                                 "duration_s": dur})
                total_b += b
                total_d += dur
                peak = max(peak, int(b * 8 / dur)) if dur else peak
            avg = int(total_b * 8 / total_d) if total_d else 0
            w, h = v["resolution"].split("x")
            lines.append('#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,RESOLUTION=%s,'
                         'FRAME-RATE=%d.000,CODECS="avc1.4d401e,mp4a.40.2"'
                         % (peak, avg, v["resolution"], v["fps"]))
            lines.append("%s/index.m3u8" % v["name"])
            entry = {
                "container": container,
                "variant": v["name"],
                "master": "/hls/%s/master.m3u8" % kind,
                "playlist": "/hls/%s/%s/index.m3u8" % (kind, v["name"]),
                "playlist_bytes": os.path.getsize(os.path.join(d, "index.m3u8")),
                "resolution": v["resolution"], "width": int(w), "height": int(h), "fps": v["fps"],
                "video_codec": "h264", "audio_codec": "aac",
                "nominal_video_bps": v["video_bps"], "nominal_audio_bps": v["audio_bps"],
                "bandwidth_bps": peak, "average_bandwidth_bps": avg,
                "target_duration_s": target, "segment_count": len(seg_list),
                "total_bytes": total_b, "total_duration_s": round(total_d, 6),
                "segments": seg_list,
            }
            if init:
                entry["init"] = {"path": "/hls/%s/%s/%s" % (kind, v["name"], init),
                                 "bytes": os.path.getsize(os.path.join(d, init))}
            out["hls"].append(entry)
        master = os.path.join(a.www, "hls", kind, "master.m3u8")
        with open(master, "w") as f:
            f.write("\n".join(lines) + "\n")
        out.setdefault("masters", []).append({"path": "/hls/%s/master.m3u8" % kind,
                                              "bytes": os.path.getsize(master)})
    for ts in sorted(glob.glob(os.path.join(a.live, "*.ts"))):
        sid = os.path.basename(ts)[:-3]
        out["progressive"].append({"path_template": "/live/{user}/{pass}/%s.ts" % sid,
                                   "stream_id": int(sid), "bytes": os.path.getsize(ts)})
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    return 0


# --------------------------------------------------------------------------- build
def read_jsonl(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if ln:
                out.append(json.loads(ln))
    return out


def pcap_stats(path):
    """Packet count, first/last timestamp, link type, snaplen of a classic pcap file."""
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            return {"packets": 0}
        magic = hdr[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            e = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            e = ">"
        else:
            return {"packets": None, "error": "not a classic pcap file"}
        nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        _, _, _, _, snaplen, linktype = struct.unpack(e + "HHiIII", hdr[4:])
        n = 0
        first = last = None
        wire = 0
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                break
            sec, frac, incl, orig = struct.unpack(e + "IIII", rh)
            f.seek(incl, 1)
            t = sec + frac / (1e9 if nano else 1e6)
            first = t if first is None else first
            last = t
            n += 1
            wire += orig
    return {"packets": n, "first_packet_epoch": first, "last_packet_epoch": last,
            "link_type": linktype, "snaplen": snaplen,
            "ts_resolution": "ns" if nano else "us", "wire_bytes": wire}


def redact(s, user, pw):
    if user:
        s = s.replace(user, "{user}")
    if pw:
        s = s.replace(pw, "{pass}")
    return s


def template(path):
    t = re.sub(r"seg_\d+", "seg_{n}", path)
    t = re.sub(r"/hls/(ts|fmp4)/(lo|hi)/", r"/hls/\1/{variant}/", t)
    t = re.sub(r"&action=[a-z_]+", "&action={action}", t)
    return t


def kind_of(path):
    if path.startswith("/player_api.php"):
        return "panel_api"
    if path.startswith("/live/"):
        return "progressive_ts"
    if path.endswith("master.m3u8"):
        return "master_playlist"
    if path.endswith(".m3u8"):
        return "media_playlist"
    if path.endswith("init.mp4"):
        return "init_segment"
    if path.endswith(".ts") or path.endswith(".m4s"):
        return "segment"
    return "other"


def parse_dnsmasq(path):
    qs = []
    if not os.path.exists(path):
        return qs
    rx = re.compile(r"query\[(\w+)\] (\S+) from (\S+)")
    with open(path) as f:
        for ln in f:
            m = rx.search(ln)
            if m:
                qs.append({"type": m.group(1), "name": m.group(2), "client": m.group(3)})
    return qs


def cmd_build(a):
    W = a.workdir
    with open(os.path.join(W, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(W, "content.json")) as f:
        content = json.load(f)
    topo = read_jsonl(os.path.join(W, "topology.jsonl"))
    actors = read_jsonl(os.path.join(W, "actors.jsonl"))
    planned = read_jsonl(os.path.join(W, "faults_planned.jsonl"))
    fault_events = read_jsonl(os.path.join(W, "logs", "faults.jsonl"))
    creds = meta["credentials"]
    user, pw = creds["username"], creds["password"]

    addr_owner = {}
    for t in topo:
        for ip in t["ipv4"] + t["ipv6"]:
            addr_owner[ip] = t["role"]
    client_name = {}
    for act in actors:
        if act["type"] in ("client", "receiver"):
            client_name[act["ipv4"]] = act["name"]
            if act.get("ipv6"):
                client_name[act["ipv6"]] = act["name"]

    # nginx access log
    http = []
    for r in read_jsonl(os.path.join(W, "logs", "access.log")):
        t_end = float(r["msec"])
        rt = float(r["request_time"])
        uri = r["uri"]
        path = redact(uri, user, pw)
        http.append({
            "t_start": round(t_end - rt, 3), "t_end": t_end, "request_time_s": rt,
            "client": r["remote_addr"], "client_port": int(r["remote_port"]),
            "client_name": client_name.get(r["remote_addr"]),
            "server": r["server_addr"], "server_port": int(r["server_port"]),
            "host": r["host"], "sni": r["sni"] or None, "scheme": r["scheme"],
            "method": r["method"], "path": path, "path_template": template(path),
            "kind": kind_of(path), "credential_bearing": path != uri,
            "protocol": r["protocol"], "status": int(r["status"]),
            "body_bytes": int(r["body_bytes_sent"]), "bytes": int(r["bytes_sent"]),
            "connection": int(r["connection"]), "connection_request": int(r["connection_requests"]),
            "user_agent": r["user_agent"],
        })
    http.sort(key=lambda x: x["t_start"])

    # players
    clients = []
    for act in actors:
        if act["type"] != "client":
            continue
        evs = read_jsonl(os.path.join(W, "logs", "client-%s.jsonl" % act["name"]))
        args = [redact(x, user, pw) for x in act["args"]]
        reqs = [e for e in evs if e["event"] == "request"]
        conns = [e for e in evs if e["event"] == "connect"]
        summ = {
            "requests_ok": sum(1 for e in reqs if e["ok"]),
            "requests_failed": sum(1 for e in reqs if not e["ok"]),
            "bytes_ok": sum(e.get("bytes", 0) for e in reqs if e["ok"]),
            "connects_ok": sum(1 for e in conns if e["ok"]),
            "connects_failed": sum(1 for e in conns if not e["ok"]),
            "tls_handshakes": sum(1 for e in evs if e["event"] == "tls" and e["ok"]),
            "host_switches": [{"t": e["t"], "from": e["from_host"], "to": e["to_host"]}
                              for e in evs if e["event"] == "switch_host"],
            "stalls": sum(1 for e in evs if e["event"] == "stall"),
            "connects_by_host": {},
        }
        for e in conns:
            if e["ok"]:
                k = "%s:%d" % (e["host"], e["port"])
                summ["connects_by_host"][k] = summ["connects_by_host"].get(k, 0) + 1
        opt = {}
        for i in range(0, len(args) - 1):
            if args[i].startswith("--"):
                opt[args[i][2:]] = args[i + 1]
        clients.append({
            "name": act["name"], "namespace": act["namespace"], "ipv4": act["ipv4"],
            "ipv6": act["ipv6"], "mode": opt.get("mode"), "scheme": opt.get("scheme", "http"),
            "hosts": opt.get("hosts", "").split(","), "port": int(opt.get("port", 80)),
            "address_family": int(opt.get("family", 4)), "master": opt.get("master"),
            "target_variant": opt.get("variant"), "switch_after_failures": int(opt.get("switch-after", 0)),
            "start_epoch": act["start_epoch"], "stop_epoch": act["stop_epoch"],
            "summary": summ, "events": evs,
        })

    # receivers
    receivers = []
    mcast = []
    for act in actors:
        if act["type"] != "receiver":
            continue
        evs = read_jsonl(os.path.join(W, "logs", "rx-%s.jsonl" % act["name"]))
        receivers.append({"name": act["name"], "namespace": act["namespace"], "ipv4": act["ipv4"],
                          "igmp_version": act["igmp_version"], "schedule": act["schedule"],
                          "events": evs})
        for e in evs:
            if e["event"] in ("join", "leave"):
                mcast.append({"t": e["t"], "receiver": act["name"], "ipv4": act["ipv4"],
                              "igmp_version": act["igmp_version"], "event": e["event"],
                              "group": e["group"], "port": e["port"]})
    mcast.sort(key=lambda x: x["t"])

    streams = [dict((k, v) for k, v in act.items() if k != "type")
               for act in actors if act["type"] == "channel"]

    # faults: planned parameters + the actual times the rules went in and out
    faults = []
    for p in planned:
        st = [e for e in fault_events if e["kind"] == p["kind"] and e["event"] == "start"]
        en = [e for e in fault_events if e["kind"] == p["kind"] and e["event"] == "end"]
        f = dict(p)
        if st:
            f["start_cmd_epoch"] = st[0]["t_cmd"]
            f["start_epoch"] = st[0]["t"]
        if en:
            f["end_cmd_epoch"] = en[0]["t_cmd"]
            f["end_epoch"] = en[0]["t"]
            for k, v in en[0].items():
                if k not in ("kind", "event", "t", "t_cmd"):
                    f[k] = v
        faults.append(f)

    servers = []
    for name, addrs in meta["names"].items():
        s = {"name": name, "ipv4": addrs[0], "ipv6": addrs[1], "namespace": "sstb-srv",
             "software": "nginx " + meta["tools"]["nginx"]}
        if name.startswith("cdn-"):
            s["ports"] = {"http": 80, "https": 443}
            s["tls_certificate"] = "self-signed, CN=%s, ECDSA P-256" % name
            s["serves"] = ["/hls/ts/master.m3u8", "/hls/fmp4/master.m3u8"]
        else:
            s["ports"] = {"http": meta["panel_port"]}
            s["serves"] = ["/player_api.php?username={user}&password={pass}[&action=...]",
                           "/live/{user}/{pass}/{stream_id}.ts"]
        servers.append(s)

    cap = pcap_stats(a.pcap)
    cap.update({"file": meta["pcap"], "bytes": os.path.getsize(a.pcap),
                "namespace": meta["capture_namespace"], "interface": meta["capture_interface"],
                "tool": "tcpdump " + meta["tools"]["tcpdump"] + " -i br0 -s 0",
                "start_epoch": meta["capture_start_epoch"], "end_epoch": meta["capture_end_epoch"]})

    dns_q = parse_dnsmasq(os.path.join(W, "logs", "dnsmasq.log"))
    dns_counts = {}
    for q in dns_q:
        k = "%s %s %s" % (q["client"], q["type"], q["name"])
        dns_counts[k] = dns_counts.get(k, 0) + 1

    by_status = {}
    for h in http:
        k = "%s %d" % (h["scheme"], h["status"])
        by_status[k] = by_status.get(k, 0) + 1
    truth = {
        "truth_version": TRUTH_VERSION,
        "generator": "testbed",
        "scenario": meta["scenario"],
        "duration_s": meta["duration_s"],
        "t0_epoch": meta["t0_epoch"],
        "capture": cap,
        "topology": {
            "ipv4_subnet": meta["net4"], "ipv6_subnet": meta["net6"],
            "bridge": "br0 in sstb-rtr (multicast snooping off, STP off)",
            "namespaces": topo,
        },
        "dns": {"server": meta["dns_server"], "software": "dnsmasq",
                "records": [{"name": n, "ipv4": v[0], "ipv6": v[1], "ttl_s": 300}
                            for n, v in meta["names"].items()],
                "queries": dns_counts},
        "servers": servers,
        "content": content,
        "streams": streams,
        "clients": clients,
        "receivers": receivers,
        "multicast_events": mcast,
        "http_log": http,
        "faults": faults,
        "credentials": [
            {"kind": "username", "value": user, "where": ["/live/{user}/{pass}/...", "player_api.php?username="]},
            {"kind": "password", "value": pw, "where": ["/live/{user}/{pass}/...", "player_api.php?password="]},
        ],
        "summary": {
            "http_requests": len(http),
            "http_requests_by_scheme_status": by_status,
            "http_body_bytes": sum(h["body_bytes"] for h in http),
            "credential_bearing_requests": sum(1 for h in http if h["credential_bearing"]),
            "igmp_joins": sum(1 for m in mcast if m["event"] == "join"),
            "igmp_leaves": sum(1 for m in mcast if m["event"] == "leave"),
            "tls_connections_by_sni": {},
            "dns_queries": len(dns_q),
        },
        "tools": meta["tools"],
    }
    for c in clients:
        if c["scheme"] == "https":
            for k, v in c["summary"]["connects_by_host"].items():
                host = k.rsplit(":", 1)[0]
                d = truth["summary"]["tls_connections_by_sni"]
                d[host] = d.get(host, 0) + v
    with open(a.out, "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("content")
    c.add_argument("--www", required=True)
    c.add_argument("--live", required=True)
    c.add_argument("--segment-s", type=float, required=True)
    c.add_argument("--variants", required=True)
    c.add_argument("--out", required=True)
    b = sub.add_parser("build")
    b.add_argument("--workdir", required=True)
    b.add_argument("--pcap", required=True)
    b.add_argument("--out", required=True)
    a = p.parse_args()
    return cmd_content(a) if a.cmd == "content" else cmd_build(a)


if __name__ == "__main__":
    sys.exit(main())
