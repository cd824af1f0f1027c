//! HLS players over cleartext HTTP/1.1 (RFC 8216, RFC 9112).
//!
//! A player looks the host up, connects, and fetches the master playlist
//! (`/hls/master.m3u8`: `#EXTM3U` and one `#EXT-X-STREAM-INF` with BANDWIDTH and
//! RESOLUTION per variant), the media playlist of its variant
//! (`/hls/<variant>/index.m3u8`: `#EXT-X-TARGETDURATION`, `#EXT-X-MEDIA-SEQUENCE`, one
//! `#EXTINF` per segment), for fMP4 the `init.mp4` map, then a startup burst of
//! `startup_segments` segments back to back (the newest of a live window, the first of
//! a VOD), then one segment per `segment_duration_s` — preceded by a media playlist
//! refresh when live. At a configured switch time the next period fetches the new
//! variant's playlist and continues the media sequence there. Requests share a
//! keep-alive connection; after `requests_per_connection` the client closes it with
//! FIN and opens a new one for the next request.
//!
//! A live playlist at time `t` ends with the last complete segment,
//! `floor((t - epoch) / d) - 1`, where the service's epoch lies a random whole number
//! of segments before the capture start, so every player of a service sees the same
//! sequence numbers. Segment `N` of a variant with bandwidth `B` holds
//! `B·d/8` bytes (rounded down to whole 188-byte packets for TS); TS segments are
//! consecutive slices of one single-program mux per player and variant at rate `B`
//! (PAT/PMT every 100 ms, PCR every 30 ms), so continuity counters and PCRs run on from
//! one segment to the next and only jump at a variant switch, as with a real encoder
//! ladder.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::rc::Rc;

use crate::engine::{Net, Shared};
use crate::http::{self, Body, Conn, Response, MS, US};
use crate::net::{tcp_flags as F, Path};
use crate::rng::Rng;
use crate::scenario::{HlsConfig, SegmentFormat};
use crate::truth::{FlowKind, HttpExchange, HttpTruth};
use crate::ts::{self, TS_PACKET};

const SERVER: &str = "nginx";
/// Size of an fMP4 initialization segment (`ftyp` + `moov`).
const INIT_BYTES: u64 = 1_024;

/// One `[[hls]]` service.
pub(crate) struct Service {
    pub cfg: HlsConfig,
    pub v4: Vec<(IpAddr, u32)>,
    pub v6: Vec<(IpAddr, u32)>,
    pub pool: Rc<Vec<u8>>,
    /// Capture time of media sequence number 0.
    pub epoch_ns: u64,
}

impl Service {
    fn dur_ns(&self) -> u64 {
        (self.cfg.segment_duration_s * 1e9) as u64
    }

    /// Last complete media sequence number of a live stream at `t`.
    fn live_edge(&self, t: u64) -> u64 {
        ((t.saturating_sub(self.epoch_ns)) / self.dur_ns().max(1)).saturating_sub(1)
    }

    /// The advertised duration (`#EXTINF`) of media sequence number `n`, seconds, to the
    /// millisecond: `segment_duration_s`, off by up to `extinf_variation` of it in nine
    /// steps chosen by `n`.
    pub fn extinf(&self, n: u64) -> f64 {
        let c = &self.cfg;
        let step = (n.wrapping_mul(2_654_435_761) >> 7) % 9;
        let off = c.extinf_variation * (step as f64 - 4.0) / 4.0;
        (c.segment_duration_s * (1.0 + off) * 1000.0).round() / 1000.0
    }

    /// Bytes of segment `n` of variant `v`: its bandwidth over its advertised duration.
    pub fn segment_bytes(&self, v: usize, n: u64) -> u64 {
        let bw = self.cfg.variants.get(v).map_or(0, |x| x.bandwidth_bps);
        let n = (bw as f64 * self.extinf(n) / 8.0) as u64;
        match self.cfg.format {
            SegmentFormat::Ts => n / TS_PACKET as u64 * TS_PACKET as u64,
            SegmentFormat::Fmp4 | SegmentFormat::Dash => n,
        }
    }

    /// `#EXT-X-TARGETDURATION`: every EXTINF rounds to at most it (RFC 8216 section
    /// 4.3.3.1).
    fn target_duration(&self) -> u64 {
        let c = &self.cfg;
        (c.segment_duration_s * (1.0 + c.extinf_variation)).ceil() as u64
    }

    fn ext(&self) -> &'static str {
        match self.cfg.format {
            SegmentFormat::Ts => "ts",
            SegmentFormat::Fmp4 | SegmentFormat::Dash => "m4s",
        }
    }

    fn dash(&self) -> bool {
        self.cfg.format == SegmentFormat::Dash
    }

    /// The path prefix of the service's files: `/hls` or `/dash`.
    fn root(&self) -> &'static str {
        if self.dash() {
            "/dash"
        } else {
            "/hls"
        }
    }

    /// The DASH MPD (ISO/IEC 23009-1): one period, one video adaptation set with a
    /// SegmentTemplate numbered as the HLS media sequence, a representation per variant.
    pub fn mpd(&self) -> String {
        let c = &self.cfg;
        let kind = if c.live { "dynamic" } else { "static" };
        let ms = (c.segment_duration_s * 1000.0).round() as u64;
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            s,
            "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"{kind}\" \
             profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" minBufferTime=\"PT2S\">"
        );
        s.push_str(" <Period id=\"0\" start=\"PT0S\">\n");
        s.push_str("  <AdaptationSet mimeType=\"video/mp4\" segmentAlignment=\"true\">\n");
        let _ = writeln!(
            s,
            "   <SegmentTemplate timescale=\"1000\" duration=\"{ms}\" startNumber=\"0\" \
             initialization=\"/dash/$RepresentationID$/init.mp4\" \
             media=\"/dash/$RepresentationID$/seg$Number$.m4s\"/>"
        );
        for v in &c.variants {
            let (w, h) = v.resolution.split_once('x').unwrap_or(("0", "0"));
            let _ = writeln!(
                s,
                "   <Representation id=\"{}\" bandwidth=\"{}\" width=\"{w}\" height=\"{h}\" \
                 codecs=\"avc1.64001f\"/>",
                v.name, v.bandwidth_bps
            );
        }
        s.push_str("  </AdaptationSet>\n </Period>\n</MPD>\n");
        s
    }

    /// The master playlist (RFC 8216 §4.3.4.2).
    pub fn master_playlist(&self) -> String {
        let mut s = String::from("#EXTM3U\n");
        let ver = if self.cfg.format == SegmentFormat::Fmp4 {
            7
        } else {
            3
        };
        let _ = writeln!(s, "#EXT-X-VERSION:{ver}");
        s.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        for v in &self.cfg.variants {
            let _ = writeln!(
                s,
                "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={},CODECS=\"avc1.64001f,mp4a.40.2\"",
                v.bandwidth_bps, v.resolution
            );
            let _ = writeln!(s, "/hls/{}/index.m3u8", v.name);
        }
        s
    }

    /// The media playlist of variant `v` as served at `t`; returns it and its first
    /// media sequence number (RFC 8216 §4.3.3, §4.3.2.1).
    pub fn media_playlist(&self, v: usize, t: u64) -> (String, u64) {
        let c = &self.cfg;
        let (first, count) = if c.live {
            let edge = self.live_edge(t);
            let n = c.window_segments as u64;
            (edge + 1 - n.min(edge + 1), n.min(edge + 1))
        } else {
            (0, c.vod_segments as u64)
        };
        let name = c.variants.get(v).map_or("", |x| x.name.as_str());
        let mut s = String::from("#EXTM3U\n");
        let ver = if c.format == SegmentFormat::Fmp4 {
            7
        } else {
            3
        };
        let _ = writeln!(s, "#EXT-X-VERSION:{ver}");
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", self.target_duration());
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{first}");
        if !c.live {
            s.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
        }
        if c.format == SegmentFormat::Fmp4 {
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"/hls/{name}/init.mp4\"");
        }
        for n in first..first + count {
            let _ = writeln!(s, "#EXTINF:{:.3},", self.extinf(n));
            let _ = writeln!(s, "/hls/{name}/seg{n}.{}", self.ext());
        }
        if !c.live {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        (s, first)
    }

    /// Variant in force at `t` (the last switch at or before `t`).
    fn variant_at(&self, t: u64, start_ns: u64) -> usize {
        let mut v = self.cfg.start_variant;
        let mut best = None::<f64>;
        for s in &self.cfg.switches {
            let at = start_ns + (s.at_s.max(0.0) * 1e9) as u64;
            if at <= t && best.is_none_or(|b| s.at_s >= b) {
                best = Some(s.at_s);
                v = s.variant;
            }
        }
        v
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Req {
    Master,
    Media(usize),
    Init(usize),
    Segment(usize, u64),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Master,
    FirstMedia,
    Burst,
    Steady,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Start,
    DnsQuery,
    DnsAnswer,
    Syn,
    SynAck,
    HsAck,
    Request,
    Data,
    Ack,
    ClientFin,
    ServerFin,
    LastAck,
}

/// An HLS player.
pub(crate) struct HlsPlayer {
    svc: Rc<Service>,
    net: Rc<Net>,
    rng: Rng,
    client: u32,
    start_ns: u64,
    phase: Phase,
    v6: bool,
    vlan: Option<u16>,
    rtt: u64,
    answers: Vec<IpAddr>,
    server_host: u32,
    lookup: crate::http::Lookup,
    conn: Option<Conn>,
    reqs_on_conn: u32,
    stage: Stage,
    queue: VecDeque<Req>,
    variant: usize,
    next_seg: u64,
    next_period: u64,
    next_req_at: u64,
    resp: Option<Response>,
    exch: usize,
    since_ack: u32,
    next_data: u64,
    buf: Vec<u8>,
    /// One continuous mux per variant: consecutive segments continue its packets, so
    /// continuity counters and PCRs run on across segment boundaries.
    muxes: Vec<Option<Box<ts::Channel>>>,
    /// Variant whose mux the current response body holds.
    body_variant: Option<usize>,
}

impl HlsPlayer {
    pub fn new(svc: Rc<Service>, net: Rc<Net>, rng: Rng, client: u32, start_ns: u64) -> Self {
        let variant = svc.cfg.start_variant;
        HlsPlayer {
            svc,
            net,
            rng,
            client,
            start_ns,
            phase: Phase::Start,
            v6: false,
            vlan: None,
            rtt: 0,
            answers: Vec::new(),
            server_host: 0,
            lookup: Default::default(),
            conn: None,
            reqs_on_conn: 0,
            stage: Stage::Master,
            queue: VecDeque::new(),
            variant,
            next_seg: 0,
            next_period: 0,
            next_req_at: 0,
            resp: None,
            exch: 0,
            since_ack: 0,
            next_data: 0,
            buf: Vec::with_capacity(512),
            muxes: Vec::new(),
            body_variant: None,
        }
    }

    /// Time the player starts.
    pub fn first_time(&mut self, start_ns: u64) -> u64 {
        start_ns + (self.rng.f64() * self.svc.cfg.start_spread_s * 1e9) as u64
    }

    fn make_path(&mut self, sh: &mut Shared, server: IpAddr, host: u32, port: u16) -> Path {
        crate::http::client_path(
            sh,
            &self.net,
            &mut self.rng,
            self.client,
            self.v6,
            self.vlan,
            server,
            host,
            port,
        )
    }

    /// Fills the request queue when it is empty, advancing the playback stage.
    fn plan(&mut self, now: u64) {
        if !self.queue.is_empty() {
            return;
        }
        let fmp4 = self.svc.cfg.format != SegmentFormat::Ts;
        let dash = self.svc.dash();
        let dur = self.svc.dur_ns();
        match self.stage {
            Stage::Master if dash => {
                // The MPD gave every address: the init segment, then the media.
                self.queue.push_back(Req::Init(self.variant));
                self.stage = Stage::FirstMedia;
                self.next_req_at = now;
            }
            Stage::Master => {
                self.queue.push_back(Req::Media(self.variant));
                if fmp4 {
                    self.queue.push_back(Req::Init(self.variant));
                }
                self.stage = Stage::FirstMedia;
                self.next_req_at = now;
            }
            Stage::FirstMedia => {
                // `next_seg` was set from the playlist the player received.
                let k = self.svc.cfg.startup_segments as u64;
                for i in 0..k {
                    if self.svc.cfg.live || self.next_seg + i < self.svc.cfg.vod_segments as u64 {
                        self.queue
                            .push_back(Req::Segment(self.variant, self.next_seg + i));
                    }
                }
                self.next_seg += self.queue.len() as u64;
                self.stage = Stage::Burst;
                self.next_req_at = now;
            }
            Stage::Burst | Stage::Steady => {
                self.next_period = if self.stage == Stage::Burst {
                    now + dur
                } else {
                    self.next_period + dur
                };
                self.stage = Stage::Steady;
                let t = self.next_period;
                let v = self.svc.variant_at(t, self.start_ns);
                let changed = v != self.variant;
                self.variant = v;
                let c = &self.svc.cfg;
                if !c.live && self.next_seg >= c.vod_segments as u64 {
                    self.stage = Stage::Done;
                    return;
                }
                if (c.live || changed) && !dash {
                    self.queue.push_back(Req::Media(v));
                }
                if fmp4 && changed {
                    self.queue.push_back(Req::Init(v));
                }
                self.queue.push_back(Req::Segment(v, self.next_seg));
                self.next_seg += 1;
                self.next_req_at = t;
            }
            Stage::Done => {}
        }
    }

    /// Builds the request for `r` into `self.buf`, the response, and the truth entry.
    fn start_request(&mut self, now: u64, sh: &mut Shared, r: Req) {
        let svc = self.svc.clone();
        let c = &svc.cfg;
        let (uri, kind, variant, seq, dur, ctype, body): (
            String,
            &'static str,
            Option<usize>,
            Option<u64>,
            Option<f64>,
            &'static str,
            Body,
        ) = match r {
            Req::Master if svc.dash() => {
                // Where the player starts: as from a live HLS playlist (the MPD's
                // numbering is the HLS media sequence).
                self.next_seg = if c.live {
                    let edge = svc.live_edge(now);
                    (edge + 1).saturating_sub(c.startup_segments as u64)
                } else {
                    0
                };
                (
                    "/dash/manifest.mpd".into(),
                    "master_playlist",
                    None,
                    None,
                    None,
                    http::CT_MPD,
                    Body::Bytes(svc.mpd().into_bytes()),
                )
            }
            Req::Master => (
                "/hls/master.m3u8".into(),
                "master_playlist",
                None,
                None,
                None,
                http::CT_M3U8,
                Body::Bytes(svc.master_playlist().into_bytes()),
            ),
            Req::Media(v) => {
                let (pl, first) = svc.media_playlist(v, now);
                if self.stage == Stage::FirstMedia {
                    // Start `startup_segments` before the live edge (or at 0 for VOD).
                    self.next_seg = if c.live {
                        let edge = svc.live_edge(now);
                        (edge + 1)
                            .saturating_sub(c.startup_segments as u64)
                            .max(first)
                    } else {
                        0
                    };
                }
                (
                    format!("/hls/{}/index.m3u8", c.variants[v].name),
                    "media_playlist",
                    Some(v),
                    Some(first),
                    None,
                    http::CT_M3U8,
                    Body::Bytes(pl.into_bytes()),
                )
            }
            Req::Init(v) => (
                format!("{}/{}/init.mp4", svc.root(), c.variants[v].name),
                "init_segment",
                Some(v),
                None,
                None,
                http::CT_MP4,
                Body::Random {
                    len: INIT_BYTES,
                    seed: self.rng.next_u32() as usize,
                },
            ),
            Req::Segment(v, n) => {
                let len = svc.segment_bytes(v, n);
                let (ct, body) = match c.format {
                    SegmentFormat::Ts => (http::CT_MP2T, self.ts_body(v, len)),
                    SegmentFormat::Fmp4 | SegmentFormat::Dash => (
                        http::CT_ISO_SEGMENT,
                        Body::Random {
                            len,
                            seed: self.rng.next_u32() as usize,
                        },
                    ),
                };
                (
                    format!("{}/{}/seg{n}.{}", svc.root(), c.variants[v].name, svc.ext()),
                    "segment",
                    Some(v),
                    Some(n),
                    Some(svc.extinf(n)),
                    ct,
                    body,
                )
            }
        };
        self.buf.clear();
        http::get_request(&mut self.buf, &uri, &c.host, &c.user_agent, true);
        let mut head = Vec::with_capacity(200);
        let blen = body.len();
        http::ok_head(&mut head, SERVER, ctype, Some(blen));
        let q = sh.q(now);
        let x = HttpExchange {
            method: "GET",
            uri,
            kind,
            variant: variant.map(|v| c.variants[v].name.clone()),
            media_sequence: seq,
            duration_s: dur,
            stream_id: None,
            request_ts_ns: q,
            request_bytes: self.buf.len() as u64,
            status: 200,
            content_type: ctype,
            content_length: Some(blen),
            response_header_bytes: head.len() as u64,
            body_bytes_sent: 0,
            first_byte_ts_ns: None,
            last_byte_ts_ns: None,
            segments: 0,
            complete: false,
        };
        if let Some(conn) = &self.conn {
            if let Some(h) = sh.flows.get_mut(conn.flow).and_then(|f| f.http.as_mut()) {
                self.exch = h.requests.len();
                h.requests.push(x);
            }
        }
        self.resp = Some(Response {
            head,
            body,
            sent: 0,
        });
    }

    fn ts_body(&mut self, v: usize, len: u64) -> Body {
        if self.muxes.len() <= v {
            self.muxes.resize_with(v + 1, || None);
        }
        self.body_variant = Some(v);
        if let Some(mux) = self.muxes[v].take() {
            return Body::Ts {
                len,
                mux,
                pkt: Box::new([0; TS_PACKET]),
                idx: u64::MAX,
            };
        }
        let bw = self
            .svc
            .cfg
            .variants
            .get(v)
            .map_or(1_000_000, |x| x.bandwidth_bps);
        let Some(conn) = &self.conn else {
            return Body::Random { len, seed: 0 };
        };
        let spec = ts::ChannelSpec {
            name: String::new(),
            path: conn.path.clone(),
            rtp: false,
            ts_per_datagram: 7,
            mux_rate_bps: bw.max(100_000),
            video_bps: bw.max(100_000) * 8 / 10,
            audio_bps: (bw / 10).min(128_000),
            pcr_interval_ns: 30_000_000,
            psi_interval_ns: 100_000_000,
            program_number: 1,
            pmt_pid: 0x100,
            video_pid: 0x101,
            audio_pid: 0x102,
            scrambled: false,
            start_ns: 0,
            end_ns: u64::MAX,
            losses: Vec::new(),
        };
        let rng = Rng::new(self.rng.next_u64());
        Body::Ts {
            len,
            mux: Box::new(ts::Channel::new(spec, rng)),
            pkt: Box::new([0; TS_PACKET]),
            idx: u64::MAX,
        }
    }

    /// After a response: the next request, a connection close, or idling.
    fn after_response(&mut self, now: u64) -> Option<u64> {
        self.plan(now);
        if self.queue.is_empty() {
            self.phase = Phase::ClientFin;
            return Some(now + 100 * US);
        }
        if self.reqs_on_conn >= self.svc.cfg.requests_per_connection {
            self.phase = Phase::ClientFin;
            return Some(now + self.rng.range_u64(100 * US, 1_000 * US));
        }
        self.phase = Phase::Request;
        Some(
            self.next_req_at
                .max(now + self.rng.range_u64(200 * US, 2_000 * US)),
        )
    }

    /// Emits the packet due at `now` and returns the time of the next one.
    pub fn step(&mut self, now: u64, sh: &mut Shared) -> Option<u64> {
        match self.phase {
            Phase::Start => {
                let c = &self.svc.cfg;
                self.v6 = !self.svc.v6.is_empty() && self.rng.chance(self.net.ipv6_share);
                self.vlan = self
                    .rng
                    .chance(self.net.vlan_share)
                    .then_some(self.net.vlan_id);
                self.rtt = ((self.rng.range_f64(c.rtt_ms) * MS) as u64).max(US);
                let list = if self.v6 { &self.svc.v6 } else { &self.svc.v4 };
                self.server_host = crate::http::round_robin(&mut self.rng, list, &mut self.answers);
                self.queue.push_back(Req::Master);
                self.next_req_at = now;
                self.phase = if c.dns_lookup {
                    Phase::DnsQuery
                } else {
                    Phase::Syn
                };
                Some(now)
            }
            Phase::DnsQuery => {
                let (res, rh) = crate::http::resolver(&self.net, self.v6);
                let path = self.make_path(sh, res, rh, 53);
                let c = &self.svc.cfg;
                let due = self.lookup.query(
                    sh,
                    &self.net,
                    &mut self.rng,
                    path,
                    now,
                    &c.host,
                    &c.name,
                    self.v6,
                    &self.answers,
                );
                self.phase = Phase::DnsAnswer;
                Some(due)
            }
            Phase::DnsAnswer => {
                let c = &self.svc.cfg;
                self.lookup
                    .answer(sh, &self.net, now, &c.host, self.v6, &self.answers);
                self.phase = Phase::Syn;
                Some(now + self.rng.range_u64(100 * US, 400 * US))
            }
            Phase::Syn => {
                let server = self
                    .answers
                    .first()
                    .copied()
                    .unwrap_or(self.net.resolver_v4);
                let port = self.svc.cfg.port;
                let path = self.make_path(sh, server, self.server_host, port);
                let c = &self.svc.cfg;
                let conn = Conn::open(
                    sh,
                    path,
                    now,
                    FlowKind::Hls,
                    &c.name,
                    self.rtt,
                    &mut self.rng,
                );
                if let Some(f) = sh.flows.get_mut(conn.flow) {
                    f.http = Some(HttpTruth {
                        host: c.host.clone(),
                        credentials: None,
                        requests: Vec::new(),
                    });
                }
                self.conn = Some(conn);
                self.reqs_on_conn = 0;
                self.phase = Phase::SynAck;
                Some(now + self.rtt)
            }
            Phase::SynAck => {
                if let Some(c) = self.conn.as_mut() {
                    c.syn_ack(now, sh);
                }
                self.phase = Phase::HsAck;
                Some(now + self.rng.range_u64(20 * US, 80 * US))
            }
            Phase::HsAck => {
                if let Some(c) = self.conn.as_mut() {
                    c.hs_ack(now, sh);
                }
                self.phase = Phase::Request;
                Some(
                    self.next_req_at
                        .max(now + self.rng.range_u64(100 * US, 500 * US)),
                )
            }
            Phase::Request => {
                let Some(r) = self.queue.pop_front() else {
                    return self.after_response(now);
                };
                self.start_request(now, sh, r);
                let len = self.buf.len();
                let data = &self.buf;
                if let Some(c) = self.conn.as_mut() {
                    c.send(now, sh, true, F::PSH | F::ACK, len, |b| {
                        b.extend_from_slice(data)
                    });
                }
                self.reqs_on_conn += 1;
                self.since_ack = 0;
                self.phase = Phase::Data;
                Some(now + self.rtt + self.rng.range_u64(200 * US, 1_000 * US))
            }
            Phase::Data => {
                let (Some(conn), Some(resp)) = (self.conn.as_mut(), self.resp.as_mut()) else {
                    return None;
                };
                let pool = &self.svc.pool[..];
                let (frame_len, last) =
                    http::response_segment(conn, resp, sh, now, self.exch, pool);
                self.since_ack += 1;
                let gap = http::gap_ns(frame_len, self.svc.cfg.rate_bps);
                self.next_data = now + gap;
                if self.since_ack >= 2 || last {
                    self.phase = Phase::Ack;
                    Some(now + (40 * US).min(gap / 2).max(1))
                } else {
                    Some(self.next_data)
                }
            }
            Phase::Ack => {
                if let Some(c) = self.conn.as_mut() {
                    c.ack(now, sh, true);
                }
                self.since_ack = 0;
                let done = self.resp.as_ref().is_none_or(|r| r.sent >= r.total());
                if !done {
                    self.phase = Phase::Data;
                    return Some(self.next_data);
                }
                if let (Some(v), Some(r)) = (self.body_variant.take(), self.resp.take()) {
                    if let (Body::Ts { mux, .. }, Some(slot)) = (r.body, self.muxes.get_mut(v)) {
                        *slot = Some(mux);
                    }
                }
                self.after_response(now)
            }
            Phase::ClientFin => {
                if let Some(c) = self.conn.as_mut() {
                    c.fin(now, sh, true);
                }
                self.phase = Phase::ServerFin;
                Some(now + self.rtt)
            }
            Phase::ServerFin => {
                if let Some(c) = self.conn.as_mut() {
                    c.fin(now, sh, false);
                }
                self.phase = Phase::LastAck;
                Some(now + self.rng.range_u64(20 * US, 80 * US))
            }
            Phase::LastAck => {
                if let Some(c) = self.conn.as_mut() {
                    c.ack(now, sh, true);
                    c.closed(sh);
                }
                self.conn = None;
                if self.queue.is_empty() {
                    // VOD played to its end.
                    return None;
                }
                self.phase = Phase::Syn;
                // Reconnect shortly before the next request is due.
                Some(
                    self.next_req_at
                        .saturating_sub(2 * self.rtt)
                        .max(now + self.rng.range_u64(1_000 * US, 5_000 * US)),
                )
            }
        }
    }
}
