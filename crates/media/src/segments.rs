//! Media segments inferred from the shape of an encrypted flow (TLS over TCP, QUIC): the
//! requests and responses of segmented streaming (HLS, DASH) show through encryption as
//! a small upstream burst followed by a large downstream one.
//!
//! # The rule
//!
//! [`SegmentInference`] is fed every packet of a flow that carries payload, with its
//! direction, time and payload length (TCP segment data, or a QUIC datagram's UDP
//! payload). Upstream packets less than [`SegmentConfig::request_merge_ns`] apart, with no
//! downstream payload between them, form one upstream burst (so a TLS ClientHello and the
//! client's Finished a round trip later are two bursts, the server's handshake flight
//! between them). A burst of [`SegmentConfig::min_request_bytes`] or more starts a
//! segment, and so does a burst of any size that comes after a downstream lull of
//! [`SegmentConfig::lull_ns`] or more (downstream payload was seen before it): a player's
//! next request after its buffer filled, however well HTTP/3's header compression made it
//! small. The segment takes every downstream byte until the next such burst (or the
//! flow's end). A segment whose downstream bytes stay under [`SegmentConfig::min_segment_bytes`]
//! is not a media segment (a handshake, a playlist, an API call): it is counted
//! ([`SegmentStats::small`]) and not emitted. An upstream burst smaller than a request
//! (TCP ACKs carry no payload; HTTP/2 WINDOW_UPDATE and PING frames, QUIC ACK-only
//! packets are a few dozen bytes) does not start one unless it comes after a lull: those
//! answer downstream data, so they follow it closely. A keep-alive after a lull starts a
//! segment that its small answer leaves under the segment size: counted, not emitted.
//!
//! No lull is required before a request: a player fetching its first segments back to
//! back sends the next request as soon as the previous response ends, and the response
//! it asks for starts a round trip later. What the rule cannot see is a request pipelined
//! while the previous response is still arriving in the same burst of upstream packets
//! as ACK traffic: such a request is taken apart only when it is request-sized.
//!
//! # What it gives
//!
//! Each [`InferredSegment`]: the request's time and size, the first and last downstream
//! byte, the downstream payload bytes and packets. Per flow ([`SegmentSummary`]): how
//! many segments, their median size, the median interval between requests, and the
//! ON/OFF ratio (time spent receiving segments over the time between them), the shape
//! that tells segmented streaming (regular requests, ON/OFF well under 1) from a bulk
//! download (one long segment) or browsing (irregular, small).
//!
//! # Memory
//!
//! A few counters and one open segment per flow; the summary keeps up to
//! [`SUMMARY_SAMPLES`] segment sizes and intervals for its medians (later ones are
//! counted in the totals only).

use streamscope_flow::Dir;

/// Segment sizes and request intervals kept per flow for the summary's medians.
pub const SUMMARY_SAMPLES: usize = 256;

/// The thresholds of the rule (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentConfig {
    /// Smallest upstream burst taken for a request, bytes of payload. Default 100: an
    /// HTTP/1.1 or HTTP/2 GET in a TLS record or a QUIC packet is larger; TLS records of
    /// HTTP/2 control frames and QUIC ACK-only packets are smaller.
    pub min_request_bytes: u32,
    /// Upstream packets closer than this form one burst. Default 20 ms.
    pub request_merge_ns: i64,
    /// Smallest downstream size of a media segment, bytes. Default 8 KiB: smaller
    /// responses are handshakes, playlists and API calls.
    pub min_segment_bytes: u64,
    /// A downstream lull at least this long before an upstream burst makes the burst a
    /// request whatever its size. Default 500 ms: a player waits seconds between
    /// segments, and ACK-like upstream packets answer downstream data within a round
    /// trip.
    pub lull_ns: i64,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        SegmentConfig {
            min_request_bytes: 100,
            request_merge_ns: 20_000_000,
            min_segment_bytes: 8 * 1024,
            lull_ns: 500_000_000,
        }
    }
}

/// One inferred media segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InferredSegment {
    /// Time of the request's first packet.
    pub request_ts_ns: i64,
    /// Upstream payload bytes of the request burst.
    pub request_bytes: u64,
    /// Time of the first downstream payload byte.
    pub first_byte_ts_ns: i64,
    /// Time of the last downstream payload byte.
    pub last_byte_ts_ns: i64,
    /// Downstream payload bytes (TLS records or QUIC packets included).
    pub bytes: u64,
    /// Downstream packets with payload.
    pub packets: u64,
}

impl InferredSegment {
    /// Time from the request to the last byte, ns.
    pub fn duration_ns(&self) -> i64 {
        (self.last_byte_ts_ns - self.request_ts_ns).max(0)
    }
}

/// What the inference saw, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentStats {
    /// Segments emitted.
    pub segments: u64,
    /// Request bursts whose response stayed under the segment size.
    pub small: u64,
    /// Upstream bursts too small for a request.
    pub small_bursts: u64,
}

/// The shape of a flow's segments ([`SegmentInference::summary`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SegmentSummary {
    /// Segments.
    pub count: u64,
    /// Their downstream bytes.
    pub bytes: u64,
    /// Median segment size, bytes.
    pub median_bytes: Option<u64>,
    /// Median time between consecutive requests, ns.
    pub median_interval_ns: Option<i64>,
    /// Time receiving segments (request to last byte) over the time between the first
    /// request and the last byte of the last segment; `None` with fewer than two.
    pub on_share: Option<f64>,
}

#[derive(Clone, Copy, Debug)]
struct Open {
    seg: InferredSegment,
    /// Downstream bytes seen yet (first_byte_ts_ns is meaningful once this is true).
    any: bool,
}

/// Segment inference for one flow: see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct SegmentInference {
    config: SegmentConfig,
    /// The upstream burst being gathered: its first time, last time and bytes.
    burst: Option<(i64, i64, u64)>,
    /// Whether the current burst already started a segment.
    burst_started: bool,
    /// Downstream payload came since the current burst's last packet.
    down_since_burst: bool,
    /// The current burst came after a downstream lull ([`SegmentConfig::lull_ns`]).
    burst_after_lull: bool,
    /// Time of the last downstream payload.
    last_down_ns: Option<i64>,
    open: Option<Open>,
    stats: SegmentStats,
    sizes: Vec<u64>,
    starts: Vec<i64>,
    on_ns: i64,
    first_request_ns: Option<i64>,
    last_byte_ns: Option<i64>,
    bytes: u64,
}

impl SegmentInference {
    /// Nothing seen yet.
    pub fn new(config: SegmentConfig) -> SegmentInference {
        SegmentInference {
            config,
            burst: None,
            burst_started: false,
            down_since_burst: false,
            burst_after_lull: false,
            last_down_ns: None,
            open: None,
            stats: SegmentStats::default(),
            sizes: Vec::new(),
            starts: Vec::new(),
            on_ns: 0,
            first_request_ns: None,
            last_byte_ns: None,
            bytes: 0,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &SegmentStats {
        &self.stats
    }

    /// One packet with `payload_len` bytes of payload (packets without payload are
    /// ignored).
    pub fn on_packet(
        &mut self,
        dir: Dir,
        ts_ns: i64,
        payload_len: u32,
        out: &mut impl FnMut(InferredSegment),
    ) {
        if payload_len == 0 {
            return;
        }
        let len = u64::from(payload_len);
        match dir {
            Dir::Up => {
                let merge = self.config.request_merge_ns;
                let (first, bytes) = match self.burst {
                    Some((first, last, bytes))
                        if !self.down_since_burst && ts_ns.saturating_sub(last) <= merge =>
                    {
                        (first, bytes + len)
                    }
                    _ => {
                        if self.burst.is_some() && !self.burst_started {
                            self.stats.small_bursts += 1;
                        }
                        self.burst_started = false;
                        self.burst_after_lull = self
                            .last_down_ns
                            .is_some_and(|d| ts_ns.saturating_sub(d) >= self.config.lull_ns);
                        (ts_ns, len)
                    }
                };
                self.burst = Some((first, ts_ns, bytes));
                self.down_since_burst = false;
                if self.burst_started {
                    if let Some(o) = self.open.as_mut() {
                        o.seg.request_bytes = bytes;
                    }
                } else if self.burst_after_lull || bytes >= u64::from(self.config.min_request_bytes)
                {
                    self.burst_started = true;
                    self.close(out);
                    self.open = Some(Open {
                        seg: InferredSegment {
                            request_ts_ns: first,
                            request_bytes: bytes,
                            first_byte_ts_ns: first,
                            last_byte_ts_ns: first,
                            bytes: 0,
                            packets: 0,
                        },
                        any: false,
                    });
                }
            }
            Dir::Down => {
                self.down_since_burst = true;
                self.last_down_ns = Some(self.last_down_ns.map_or(ts_ns, |d| d.max(ts_ns)));
                if let Some(o) = self.open.as_mut() {
                    if !o.any {
                        o.any = true;
                        o.seg.first_byte_ts_ns = ts_ns;
                    }
                    o.seg.last_byte_ts_ns = o.seg.last_byte_ts_ns.max(ts_ns);
                    o.seg.bytes += len;
                    o.seg.packets += 1;
                }
            }
        }
    }

    /// The flow ended: the open segment, if any, is emitted.
    pub fn finish(&mut self, out: &mut impl FnMut(InferredSegment)) {
        if self.burst.is_some() && !self.burst_started {
            self.stats.small_bursts += 1;
        }
        self.burst = None;
        self.close(out);
    }

    fn close(&mut self, out: &mut impl FnMut(InferredSegment)) {
        let Some(o) = self.open.take() else {
            return;
        };
        if !o.any || o.seg.bytes < self.config.min_segment_bytes {
            self.stats.small += 1;
            return;
        }
        let s = o.seg;
        self.stats.segments += 1;
        self.bytes += s.bytes;
        self.on_ns += s.duration_ns();
        self.first_request_ns.get_or_insert(s.request_ts_ns);
        self.last_byte_ns = Some(
            self.last_byte_ns
                .map_or(s.last_byte_ts_ns, |l| l.max(s.last_byte_ts_ns)),
        );
        if self.sizes.len() < SUMMARY_SAMPLES {
            self.sizes.push(s.bytes);
            self.starts.push(s.request_ts_ns);
        }
        out(s);
    }

    /// The shape of the segments emitted so far.
    pub fn summary(&self) -> SegmentSummary {
        let mut sizes = self.sizes.clone();
        let mut gaps: Vec<i64> = self.starts.windows(2).map(|w| w[1] - w[0]).collect();
        let on_share = match (self.first_request_ns, self.last_byte_ns) {
            (Some(a), Some(b)) if self.stats.segments >= 2 && b > a => {
                Some((self.on_ns as f64 / (b - a) as f64).min(1.0))
            }
            _ => None,
        };
        SegmentSummary {
            count: self.stats.segments,
            bytes: self.bytes,
            median_bytes: median(&mut sizes),
            median_interval_ns: median(&mut gaps),
            on_share,
        }
    }
}

fn median<T: Copy + Ord>(v: &mut [T]) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable(mid);
    Some(*m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn run(packets: &[(Dir, i64, u32)]) -> (Vec<InferredSegment>, SegmentInference) {
        let mut s = SegmentInference::new(SegmentConfig::default());
        let mut out = Vec::new();
        for &(d, t, l) in packets {
            s.on_packet(d, t, l, &mut |x| out.push(x));
        }
        s.finish(&mut |x| out.push(x));
        (out, s)
    }

    /// A request, then `n` packets of 1,400 bytes down, 1 ms apart, from `at`.
    fn fetch(at: i64, req: u32, n: u32) -> Vec<(Dir, i64, u32)> {
        let mut v = vec![(Dir::Up, at, req)];
        for i in 0..n {
            v.push((Dir::Down, at + 20 * MS + i64::from(i) * MS, 1_400));
            // ACKs carry no payload.
            v.push((Dir::Up, at + 20 * MS + i64::from(i) * MS, 0));
        }
        v
    }

    /// QUIC: ACK-only packets (40 bytes) answer the data; an HTTP/3 request compressed
    /// to 60 bytes, under the request size, still starts a segment after the player's
    /// pause; a keep-alive after a pause whose answer is tiny starts none.
    #[test]
    fn a_small_request_after_a_lull_starts_a_segment() {
        let quic = |at: i64, req: u32, n: u32| {
            let mut v = vec![(Dir::Up, at, req)];
            for i in 0..n {
                let t = at + 20 * MS + i64::from(i) * MS;
                v.push((Dir::Down, t, 1_200));
                if i % 2 == 1 {
                    v.push((Dir::Up, t, 40));
                }
            }
            v
        };
        let mut p = quic(0, 300, 20);
        p.extend(quic(4_000 * MS, 60, 20)); // after a lull of almost 4 s
        p.extend([(Dir::Up, 6_000 * MS, 45), (Dir::Down, 6_020 * MS, 40)]); // keep-alive
        p.extend(quic(8_000 * MS, 60, 20));
        let (segs, s) = run(&p);
        assert_eq!(
            segs.iter()
                .map(|x| (x.request_ts_ns, x.request_bytes, x.bytes))
                .collect::<Vec<_>>(),
            [
                (0, 300, 24_000),
                (4_000 * MS, 60, 24_000),
                (8_000 * MS, 60, 24_000)
            ]
        );
        assert_eq!(s.stats().small, 1, "the keep-alive");
        // Without the lull rule the two small requests were not seen: their responses
        // ran into the segments before them.
        let mut strict = SegmentInference::new(SegmentConfig {
            lull_ns: i64::MAX,
            ..SegmentConfig::default()
        });
        let mut n = 0;
        for &(d, t, l) in &p {
            strict.on_packet(d, t, l, &mut |_| n += 1);
        }
        strict.finish(&mut |_| n += 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn requests_split_the_downstream_into_segments() {
        let mut p = vec![(Dir::Up, 0, 517), (Dir::Down, 20 * MS, 4_000)]; // handshake
        for k in 0..4 {
            p.extend(fetch(2_000 * MS * (k + 1), 450, 30));
        }
        let (segs, s) = run(&p);
        assert_eq!(segs.len(), 4);
        assert!(segs
            .iter()
            .all(|x| x.bytes == 42_000 && x.packets == 30 && x.request_bytes == 450));
        assert_eq!(segs[1].request_ts_ns, 4_000 * MS);
        assert_eq!(segs[1].first_byte_ts_ns, 4_020 * MS);
        assert_eq!(segs[1].last_byte_ts_ns, 4_049 * MS);
        assert_eq!(s.stats().small, 1, "the handshake is not a segment");
        let sum = s.summary();
        assert_eq!(sum.count, 4);
        assert_eq!(sum.median_bytes, Some(42_000));
        assert_eq!(sum.median_interval_ns, Some(2_000 * MS));
        // 3 × 49 ms + 49 ms on, over 6,049 ms.
        let on = sum.on_share.unwrap();
        assert!((on - 4.0 * 49.0 / 6_049.0).abs() < 1e-9, "{on}");
    }

    #[test]
    fn back_to_back_requests_need_no_lull() {
        let mut p = fetch(0, 300, 20);
        // The next request right after the last byte of the previous response.
        p.extend(fetch(40 * MS, 300, 20));
        let (segs, _) = run(&p);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].bytes, 28_000);
        assert_eq!(segs[1].bytes, 28_000);
    }

    #[test]
    fn a_request_in_several_packets_is_one_burst() {
        let mut p = vec![(Dir::Up, 0, 60), (Dir::Up, MS, 60), (Dir::Up, 2 * MS, 60)];
        p.extend(fetch(5 * MS, 0, 10).into_iter().skip(1));
        let (segs, _) = run(&p);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].request_bytes, 180);
        assert_eq!(segs[0].request_ts_ns, 0);
    }

    #[test]
    fn small_upstream_records_do_not_cut_a_segment() {
        let mut p = fetch(0, 400, 40);
        // A WINDOW_UPDATE-sized record upstream in the middle of the response.
        p.push((Dir::Up, 30 * MS, 38));
        p.sort_by_key(|x| x.1);
        let (segs, s) = run(&p);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].bytes, 56_000);
        assert_eq!(s.stats().small_bursts, 1);
    }

    #[test]
    fn the_handshake_and_the_first_request_are_two_bursts() {
        // ClientHello, the server's flight 15 ms later, then Finished and the request
        // 15 ms after that: within the merge window of the ClientHello, but the server's
        // bytes between them end the first burst.
        let mut p = vec![(Dir::Up, 0, 517), (Dir::Down, 15 * MS, 4_000)];
        p.extend(fetch(30 * MS, 600, 20));
        let (segs, s) = run(&p);
        assert_eq!(segs.len(), 1);
        assert_eq!((segs[0].request_ts_ns, segs[0].bytes), (30 * MS, 28_000));
        assert_eq!(s.stats().small, 1);
    }

    #[test]
    fn a_bulk_download_is_one_long_segment() {
        let p = fetch(0, 400, 5_000);
        let (segs, s) = run(&p);
        assert_eq!(segs.len(), 1);
        assert_eq!(s.summary().on_share, None);
    }
}
