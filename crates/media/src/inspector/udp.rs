//! A UDP flow's media state: MPEG-TS and RTP found by content, a multicast group's
//! channel sessions, the hand-over to QUIC.

use super::*;

/// A UDP flow's media state.
#[derive(Debug)]
pub(super) struct Udp {
    /// The multicast group, when one side is one (boxed: most UDP flows have none).
    pub(super) group: Option<Box<Group>>,
    /// The analysers, boxed: a flow being probed carries neither (about 1 KiB each).
    pub(super) ts: Option<Box<TsAnalyzer>>,
    pub(super) carrier: Carrier,
    pub(super) rtp: Option<Box<RtpFlow>>,
    /// Datagrams looked at.
    pub(super) datagrams: u32,
    /// Probing is over: nothing found in [`PROBE_DATAGRAMS`] datagrams.
    pub(super) let_go: bool,
    /// Time of the last datagram (a bin's end for the MDI).
    pub(super) last_ns: i64,
    /// The first datagram was a QUIC Initial: the flow is read as QUIC from now on.
    pub(super) quic: bool,
    pub(super) class: Option<MediaClass>,
}

/// A multicast flow's group, and where its channel-session counters are.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) addr: IpAddr,
    pub(super) handle: GroupHandle,
}

impl Udp {
    pub(super) fn found(&self) -> bool {
        self.ts.is_some() || self.rtp_found()
    }

    pub(super) fn rtp_found(&self) -> bool {
        self.rtp
            .as_ref()
            .is_some_and(|r| r.is_rtp(FlowDir::Up) || r.is_rtp(FlowDir::Down))
    }

    pub(super) fn wants(&self) -> Wants {
        if self.let_go {
            Wants::NOTHING
        } else {
            Wants::PACKETS
        }
    }

    pub(super) fn datagram(
        &mut self,
        flow: &FlowStart,
        s: &Segment<'_>,
        out: &mut (dyn MediaOut + Send),
    ) {
        if self.datagrams == 0
            && self.group.is_none()
            && quic::client_first_version(s.payload, s.payload_len as usize).is_some()
        {
            self.quic = true;
            self.let_go = true;
            return;
        }
        self.last_ns = self.last_ns.max(s.ts_ns);
        let payload = s.payload;
        if let Some(g) = self.group.as_deref_mut() {
            let source = match s.dir {
                FlowDir::Up => flow.client.addr,
                FlowDir::Down => flow.server.addr,
            };
            if source != g.addr {
                let bytes = u64::from(s.payload_len);
                out.group_packet(s.ts_ns, g.addr, source, bytes, &mut g.handle);
            }
        }
        let probing = !self.found();
        if self.rtp.is_none() && probing && payload.len() >= 12 && payload[0] >> 6 == 2 {
            self.rtp = Some(Box::new(RtpFlow::new(RtpConfig::default())));
        }
        if let Some(r) = self.rtp.as_mut() {
            r.on_datagram(s.dir, s.ts_ns, payload);
            if r.gave_up(FlowDir::Up) && r.gave_up(FlowDir::Down) {
                self.rtp = None;
            }
        }
        // Only a whole datagram is evidence: one a snap length cut may end on any byte.
        let whole = payload.len() == s.payload_len as usize;
        if self.ts.is_none() && probing && whole {
            if let Some(f) = ts::detect(payload) {
                self.ts = Some(Box::new(TsAnalyzer::new(out.ts_config())));
                self.carrier = match f.encapsulation {
                    Encapsulation::Raw => Carrier::Udp,
                    Encapsulation::Rtp { .. } => Carrier::Rtp,
                };
            }
        }
        if let Some(t) = self.ts.as_mut() {
            t.on_datagram(s.ts_ns, payload);
        }
        self.datagrams = self.datagrams.saturating_add(1);
        if !self.found() && self.group.is_none() && self.datagrams >= PROBE_DATAGRAMS {
            self.let_go = true;
            self.rtp = None;
        }
    }

    pub(super) fn end(&mut self, flow: &FlowStart, ended_ns: i64, out: &mut (dyn MediaOut + Send)) {
        if let Some(t) = self.ts.as_mut() {
            t.finish(ended_ns);
            if let (Carrier::Rtp, Some(r)) = (self.carrier, self.rtp.as_ref()) {
                // Sequence numbers never received: RFC 3550's loss (expected less
                // received) counts each duplicate against it.
                let lost: u64 = r
                    .streams()
                    .map(|s| {
                        s.lost
                            .saturating_add_unsigned(s.duplicates)
                            .max(0)
                            .unsigned_abs()
                    })
                    .sum();
                t.set_rtp_lost(lost);
            }
            out.ts(flow, t, self.carrier);
            self.class = Some(if self.group.is_some() {
                MediaClass::IptvMulticast
            } else {
                MediaClass::IptvUnicast
            });
        }
        if let Some(r) = self.rtp.as_mut() {
            r.finish(ended_ns);
            if r.streams().next().is_some() {
                out.rtp(flow, r);
                if self.class.is_none() {
                    self.class = Some(MediaClass::RtpMedia);
                }
            }
        }
    }

    pub(super) fn close_bin(&mut self) -> MediaBin {
        let mut b = MediaBin::default();
        let mut ts_secs = None;
        if let Some(t) = self.ts.as_mut() {
            let c = t.take_interval(self.last_ns);
            let secs = (c.end_ns - c.start_ns) as f64 / 1e9;
            if secs > 0.0 {
                ts_secs = Some((secs, t.packets_per_datagram()));
                b.ts_mlr_pps = Some(c.mlr_pps);
            }
            b.ts_packets = c.packets;
            b.ts_cc_errors = c.cc_errors;
            b.ts_lost_packets = c.lost_packets;
            b.ts_transport_errors = c.transport_errors;
            b.ts_pcr_errors = c.pcr_errors;
            b.ts_df_ms = c.df_ms;
        }
        if let Some(r) = self.rtp.as_mut() {
            let c = r.take_interval();
            b.rtp_packets = c.packets;
            b.rtp_lost = c.lost;
            b.rtp_duplicates = c.duplicates;
            b.rtp_reordered = c.reordered;
            b.rtp_max_jitter_ms = c.max_jitter_ms;
            if let (Carrier::Rtp, Some((secs, per))) = (self.carrier, ts_secs) {
                // Sequence numbers never received, as for the whole stream (`end`).
                let never = c.lost.saturating_add_unsigned(c.duplicates).max(0);
                b.ts_mlr_pps = Some(never.unsigned_abs().saturating_mul(per) as f64 / secs);
            }
        }
        b
    }
}
