//! TCP facts tracked per flow: handshake and its round-trip time, retransmissions,
//! FIN and RST (RFC 9293).
//!
//! Sequence numbers are compared modulo 2^32 (RFC 9293 §3.4), so a stream that wraps
//! around is not mistaken for retransmissions.

/// TCP flag bits (RFC 9293 §3.1).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// `a` is at or before `b` in sequence space.
fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// Per-flow TCP state. Direction index 0 is client → server, 1 is server → client.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpState {
    /// The time of the client's first SYN until the handshake is seen complete, then the
    /// handshake's round trip (the SYN time is not needed after it: one field for both
    /// keeps the state, which a million TCP flows each have, 16 bytes smaller).
    syn_ns_then_rtt: Option<i64>,
    synack_ack: Option<u32>,
    next_seq: [u32; 2],
    seq_known: [bool; 2],
    pub retransmitted: [u64; 2],
    pub fin: [bool; 2],
    pub rst: bool,
    pub syn_seen: bool,
    pub handshake_seen: bool,
}

/// The facts a finished flow reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSummary {
    pub syn_seen: bool,
    pub handshake_seen: bool,
    /// Time from the client's SYN to its ACK of the server's SYN+ACK, as seen at the
    /// capture point: the sum of the round trips on both sides of the capture point.
    pub handshake_rtt_ns: Option<i64>,
    pub retransmitted: [u64; 2],
    pub fin: [bool; 2],
    pub rst: bool,
}

impl TcpState {
    /// Both sides sent FIN, or one sent RST: the connection is over.
    pub fn closed(&self) -> bool {
        self.rst || (self.fin[0] && self.fin[1])
    }

    pub fn any_fin(&self) -> bool {
        self.fin[0] || self.fin[1]
    }

    /// Updates the state with one segment travelling in direction `dir`.
    pub fn on_segment(
        &mut self,
        dir: usize,
        ts_ns: i64,
        seq: u32,
        ack: u32,
        tcp_flags: u8,
        payload_len: u32,
    ) {
        let syn = tcp_flags & flags::SYN != 0;
        let fin = tcp_flags & flags::FIN != 0;
        let has_ack = tcp_flags & flags::ACK != 0;
        if tcp_flags & flags::RST != 0 {
            self.rst = true;
        }
        // Handshake: client SYN, server SYN+ACK, client ACK acknowledging it.
        if syn && !has_ack && dir == 0 {
            self.syn_seen = true;
            self.syn_ns_then_rtt.get_or_insert(ts_ns);
        } else if syn && has_ack && dir == 1 {
            self.syn_seen = true;
            self.synack_ack = Some(seq.wrapping_add(1));
        } else if !syn && has_ack && dir == 0 && !self.handshake_seen {
            if let (Some(expected), Some(syn_ns)) = (self.synack_ack, self.syn_ns_then_rtt) {
                if ack == expected {
                    self.handshake_seen = true;
                    self.syn_ns_then_rtt = Some(ts_ns - syn_ns);
                }
            }
        }
        // Retransmissions: a segment carrying sequence space that was already seen.
        let len = payload_len + u32::from(syn) + u32::from(fin);
        if len > 0 {
            let end = seq.wrapping_add(len);
            if self.seq_known[dir] {
                let next = self.next_seq[dir];
                let keepalive = payload_len <= 1 && !syn && !fin && seq == next.wrapping_sub(1);
                if seq_le(end, next) && !keepalive {
                    self.retransmitted[dir] += 1;
                } else if !seq_le(end, next) {
                    self.next_seq[dir] = end;
                }
            } else {
                self.seq_known[dir] = true;
                self.next_seq[dir] = end;
            }
        }
        if fin {
            self.fin[dir] = true;
        }
    }

    pub fn summary(&self) -> TcpSummary {
        TcpSummary {
            syn_seen: self.syn_seen,
            handshake_seen: self.handshake_seen,
            handshake_rtt_ns: self.syn_ns_then_rtt.filter(|_| self.handshake_seen),
            retransmitted: self.retransmitted,
            fin: self.fin,
            rst: self.rst,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;

    #[test]
    fn handshake_rtt_from_syn_to_ack() {
        let mut t = TcpState::default();
        t.on_segment(0, 1_000, 100, 0, SYN, 0);
        t.on_segment(1, 21_000, 5000, 101, SYN | ACK, 0);
        t.on_segment(0, 31_000, 101, 5001, ACK, 0);
        let s = t.summary();
        assert!(s.handshake_seen && s.syn_seen);
        assert_eq!(s.handshake_rtt_ns, Some(30_000));
        assert_eq!(s.retransmitted, [0, 0]);
    }

    #[test]
    fn ack_of_wrong_number_is_not_a_handshake() {
        let mut t = TcpState::default();
        t.on_segment(0, 0, 100, 0, SYN, 0);
        t.on_segment(1, 10, 5000, 101, SYN | ACK, 0);
        t.on_segment(0, 20, 101, 4000, ACK, 0);
        assert!(!t.summary().handshake_seen);
    }

    #[test]
    fn retransmissions_and_keepalives() {
        let mut t = TcpState::default();
        t.on_segment(1, 0, 1000, 0, ACK, 100); // 1000..1100
        t.on_segment(1, 1, 1100, 0, ACK, 100); // 1100..1200
        t.on_segment(1, 2, 1000, 0, ACK, 100); // again: retransmission
        t.on_segment(1, 3, 1199, 0, ACK, 1); // keep-alive probe
        t.on_segment(1, 4, 1200, 0, ACK, 0); // pure ACK
        assert_eq!(t.retransmitted, [0, 1]);
    }

    #[test]
    fn sequence_wrap_is_not_a_retransmission() {
        let mut t = TcpState::default();
        t.on_segment(0, 0, u32::MAX - 50, 0, ACK, 100);
        t.on_segment(0, 1, 49, 0, ACK, 100);
        t.on_segment(0, 2, 149, 0, ACK, 100);
        assert_eq!(t.retransmitted, [0, 0]);
    }

    #[test]
    fn close_by_fin_or_rst() {
        let mut t = TcpState::default();
        t.on_segment(0, 0, 1, 0, FIN | ACK, 0);
        assert!(!t.closed() && t.any_fin());
        t.on_segment(1, 0, 1, 0, FIN | ACK, 0);
        assert!(t.closed());
        let mut r = TcpState::default();
        r.on_segment(1, 0, 1, 0, RST, 0);
        assert!(r.closed());
    }
}
