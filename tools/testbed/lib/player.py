#!/usr/bin/env python3
"""Lab player: plays HLS or a progressive MPEG-TS stream like a set-top box or app would.

Runs inside a client network namespace of the testbed. Every connection attempt, request,
retry, host switch, variant change and stall is written as one JSON object per line to
--log, with wall-clock epoch timestamps (same clock as the capture), so the testbed can
put the player's own view of the session into the ground-truth file.

HLS mode: fetch the master playlist, start on the lowest variant, move to the target
variant after --ramp segments, then fetch segments paced by a simple buffer model
(target buffer of --buffer segments, refill when one segment has been played). On a
connection failure it retries with exponential backoff; after --switch-after consecutive
failures it moves to the next host in --hosts and reloads the playlists there.

Progressive mode: call the panel API (player_api.php with username/password), then
GET the TS URL and read it at the stream's mux rate (after a preroll burst), as a
player draining a real-time stream does; at --stop it closes the connection mid-stream.
"""

import argparse
import http.client
import json
import socket
import ssl
import sys
import time
import urllib.parse

UA_HLS = "streamscope-testbed-player/1.0 (hls)"
UA_TS = "streamscope-testbed-player/1.0 (progressive-ts)"


class Log:
    def __init__(self, path, name):
        self.f = open(path, "a", buffering=1)
        self.name = name

    def ev(self, event, **kw):
        rec = {"t": round(time.time(), 6), "client": self.name, "event": event}
        rec.update(kw)
        self.f.write(json.dumps(rec, sort_keys=True) + "\n")


class ConnError(Exception):
    pass


class Session:
    """One keep-alive HTTP(S) connection to one host, opened on demand."""

    def __init__(self, log, scheme, host, port, family, ua, timeout=5.0, rcvbuf=0):
        self.log = log
        self.scheme = scheme
        self.host = host
        self.port = port
        self.family = socket.AF_INET6 if family == 6 else socket.AF_INET
        self.ua = ua
        self.timeout = timeout
        self.rcvbuf = rcvbuf
        self.conn = None
        self.conn_seq = 0
        self.local = None

    def _open(self):
        t0 = time.time()
        try:
            infos = socket.getaddrinfo(self.host, self.port, self.family, socket.SOCK_STREAM)
        except socket.gaierror as e:
            self.log.ev("resolve_error", host=self.host, error=str(e))
            raise ConnError("resolve") from e
        addr = infos[0][4]
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        if self.rcvbuf:
            # a player's small socket buffer keeps TCP flow control in step with playback
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.settimeout(self.timeout)
        try:
            sock.connect(addr)
        except OSError as e:
            sock.close()
            self.log.ev("connect", host=self.host, addr=addr[0], port=self.port, scheme=self.scheme,
                        ok=False, error=type(e).__name__, t_start=round(t0, 6))
            raise ConnError("connect") from e
        self.local = sock.getsockname()
        self.conn_seq += 1
        self.log.ev("connect", host=self.host, addr=addr[0], port=self.port, scheme=self.scheme,
                    ok=True, local_port=self.local[1], t_start=round(t0, 6))
        if self.scheme == "https":
            ctx = ssl.create_default_context()
            # The lab's certificates are self-signed; the player checks nothing but
            # still sends SNI, which is what the capture must show.
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            try:
                sock = ctx.wrap_socket(sock, server_hostname=self.host)
            except (OSError, ssl.SSLError) as e:
                sock.close()
                self.log.ev("tls", host=self.host, ok=False, error=type(e).__name__, local_port=self.local[1])
                raise ConnError("tls") from e
            self.log.ev("tls", host=self.host, ok=True, version=sock.version(), local_port=self.local[1])
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.sock = sock
        self.conn = conn

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.log.ev("close", host=self.host, local_port=self.local[1] if self.local else None)
        self.conn = None

    def get(self, path, log_path=None, stream=False):
        """GET path; returns (status, body or response). Raises ConnError on failure."""
        if self.conn is None:
            self._open()
        t0 = time.time()
        try:
            self.conn.request("GET", path, headers={"User-Agent": self.ua, "Accept": "*/*"})
            resp = self.conn.getresponse()
            if stream:
                return resp.status, resp
            body = resp.read()
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            self.log.ev("request", host=self.host, path=log_path or path, ok=False,
                        error=type(e).__name__, t_start=round(t0, 6), local_port=self.local[1])
            self.close()
            raise ConnError("request") from e
        self.log.ev("request", host=self.host, path=log_path or path, ok=True, status=resp.status,
                    bytes=len(body), t_start=round(t0, 6), local_port=self.local[1])
        if resp.will_close:
            self.close()
        return resp.status, body


def parse_master(text):
    """Return [(bandwidth, uri)] from a master playlist (RFC 8216 section 4.3.4.2)."""
    out = []
    lines = [ln.strip() for ln in text.splitlines()]
    for i, ln in enumerate(lines):
        if ln.startswith("#EXT-X-STREAM-INF:"):
            bw = 0
            for part in ln.split(":", 1)[1].split(","):
                if part.startswith("BANDWIDTH="):
                    bw = int(part.split("=", 1)[1])
            for nxt in lines[i + 1:]:
                if nxt and not nxt.startswith("#"):
                    out.append((bw, nxt))
                    break
    out.sort()
    return out


def parse_media(text):
    """Return (init_uri or None, [(duration, uri)]) from a media playlist (RFC 8216 4.3.2)."""
    init = None
    segs = []
    dur = None
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.startswith("#EXT-X-MAP:"):
            for part in ln.split(":", 1)[1].split(","):
                if part.startswith("URI="):
                    init = part.split("=", 1)[1].strip('"')
        elif ln.startswith("#EXTINF:"):
            dur = float(ln.split(":", 1)[1].split(",")[0])
        elif ln and not ln.startswith("#"):
            segs.append((dur or 0.0, ln))
            dur = None
    return init, segs


def sleep_until(t):
    d = t - time.time()
    if d > 0:
        time.sleep(d)


class Retry:
    def __init__(self, log, base, cap, switch_after, hosts):
        self.log = log
        self.base = base
        self.cap = cap
        self.switch_after = switch_after
        self.hosts = hosts
        self.idx = 0
        self.fails = 0

    @property
    def host(self):
        return self.hosts[self.idx]

    def ok(self):
        self.fails = 0

    def failed(self):
        """Record a failure, sleep the backoff; return True if the host was switched."""
        self.fails += 1
        delay = min(self.base * (2 ** (self.fails - 1)), self.cap)
        self.log.ev("backoff", host=self.host, failures=self.fails, delay_s=delay)
        time.sleep(delay)
        if self.switch_after and self.fails >= self.switch_after and self.idx + 1 < len(self.hosts):
            old = self.host
            self.idx += 1
            self.fails = 0
            self.log.ev("switch_host", from_host=old, to_host=self.host)
            return True
        return False


def run_hls(a, log):
    hosts = a.hosts.split(",")
    retry = Retry(log, a.backoff, a.backoff_cap, a.switch_after, hosts)
    sess = Session(log, a.scheme, retry.host, a.port, a.family, UA_HLS)
    master_dir = a.master.rsplit("/", 1)[0]
    variants = None
    cur_variant = None
    init = None
    segs = []
    media_dir = None
    seg_idx = 0
    fetched = 0
    buffered = 0.0
    playing = False
    last = time.time()
    need_master = True

    def drain(buffered, playing, last, now):
        """Play out the buffer from last to now; log when playback ran dry."""
        if not playing:
            return buffered, playing
        if now - last >= buffered:
            log.ev("stall", stalled_at=round(last + buffered, 6))
            return 0.0, False
        return buffered - (now - last), True

    def fetch(path):
        st, body = sess.get(path)
        if st != 200:
            raise ConnError("status %d" % st)
        retry.ok()
        return body

    while time.time() < a.stop:
        try:
            if need_master:
                body = fetch(a.master)
                variants = parse_master(body.decode())
                need_master = False
                cur_variant = None
            target = min(a.variant, len(variants) - 1)
            pending = 0 if fetched < a.ramp else target
            if pending != cur_variant:
                uri = variants[pending][1]
                media_path = master_dir + "/" + uri
                body = fetch(media_path)
                init, segs = parse_media(body.decode())
                media_dir = media_path.rsplit("/", 1)[0]
                if init:
                    fetch(media_dir + "/" + init)
                log.ev("variant", index=pending, bandwidth=variants[pending][0], playlist=media_path)
                cur_variant = pending
            # buffer model
            now = time.time()
            buffered, playing = drain(buffered, playing, last, now)
            last = now
            seg_dur = segs[seg_idx][0] if segs else 2.0
            if buffered > (a.buffer - 1) * seg_dur:
                wake = now + buffered - (a.buffer - 1) * seg_dur
                sleep_until(min(wake, a.stop))
                continue
            if seg_idx >= len(segs):
                log.ev("loop")
                seg_idx = 0
            dur, uri = segs[seg_idx]
            fetch(media_dir + "/" + uri)
            seg_idx += 1
            fetched += 1
            now = time.time()
            buffered, playing = drain(buffered, playing, last, now)
            last = now
            buffered += dur
            if not playing and buffered >= a.start_buffer * dur:
                playing = True
                log.ev("play", buffered_s=round(buffered, 3))
        except ConnError:
            if time.time() >= a.stop:
                break
            if retry.failed():
                sess.close()
                sess = Session(log, a.scheme, retry.host, a.port, a.family, UA_HLS)
                need_master = True
                cur_variant = None
            # time spent failing drains the buffer
            now = time.time()
            buffered, playing = drain(buffered, playing, last, now)
            last = now
    sess.close()


def run_progressive(a, log):
    sess = Session(log, "http", a.hosts.split(",")[0], a.port, a.family, UA_TS, timeout=10.0,
                   rcvbuf=65536)
    user, pw = a.user, a.password
    q = urllib.parse.urlencode({"username": user, "password": pw})
    red = "username={user}&password={pass}"
    try:
        sess.get("/player_api.php?" + q, log_path="/player_api.php?" + red)
        sess.get("/player_api.php?" + q + "&action=get_live_streams",
                 log_path="/player_api.php?" + red + "&action=get_live_streams")
    except ConnError:
        pass
    path = "/live/%s/%s/%s.ts" % (user, pw, a.stream_id)
    log_path = "/live/{user}/{pass}/%s.ts" % a.stream_id
    t0 = time.time()
    got = 0
    try:
        st, resp = sess.get(path, log_path=log_path, stream=True)
        log.ev("stream_open", host=sess.host, path=log_path, status=st, t_start=round(t0, 6),
               local_port=sess.local[1])
        rate = a.rate / 8.0
        while time.time() < a.stop:
            allowed = rate * (time.time() - t0 + a.preroll)
            if got >= allowed:
                sleep_until(min(time.time() + (got - allowed) / rate + 0.05, a.stop))
                continue
            chunk = resp.read(min(8192, int(allowed - got) + 1))
            if not chunk:
                break
            got += len(chunk)
    except (ConnError, OSError, http.client.HTTPException) as e:
        log.ev("stream_error", error=type(e).__name__, bytes=got)
    log.ev("stream_close", path=log_path, bytes=got, t_start=round(t0, 6),
           reason="stop" if time.time() >= a.stop else "eof")
    # Closing with unread data makes the kernel reset the connection, like a player
    # that stops watching mid-stream.
    if sess.conn is not None and sess.conn.sock is not None:
        try:
            sess.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
    sess.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--mode", choices=["hls", "progressive"], required=True)
    p.add_argument("--hosts", required=True, help="comma list: primary first, then fallbacks")
    p.add_argument("--scheme", default="http")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--family", type=int, default=4)
    p.add_argument("--start", type=float, default=0.0)
    p.add_argument("--stop", type=float, required=True)
    p.add_argument("--master", default="/hls/ts/master.m3u8")
    p.add_argument("--variant", type=int, default=0)
    p.add_argument("--ramp", type=int, default=3)
    p.add_argument("--buffer", type=int, default=3)
    p.add_argument("--start-buffer", type=int, default=2)
    p.add_argument("--backoff", type=float, default=0.5)
    p.add_argument("--backoff-cap", type=float, default=4.0)
    p.add_argument("--switch-after", type=int, default=0)
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--stream-id", default="1001")
    p.add_argument("--rate", type=float, default=140000.0)
    p.add_argument("--preroll", type=float, default=2.0)
    a = p.parse_args()
    log = Log(a.log, a.name)
    sleep_until(a.start)
    log.ev("start", mode=a.mode, hosts=a.hosts.split(","), scheme=a.scheme, family=a.family)
    if a.mode == "hls":
        run_hls(a, log)
    else:
        run_progressive(a, log)
    log.ev("stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
