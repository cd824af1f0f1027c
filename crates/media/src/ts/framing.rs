//! How TS packets are carried: detection in a UDP payload (raw or in RTP), the byte
//! stream with its sync lock, and RTSP interleaved framing (see the
//! [module documentation](super#carriage)).

use super::{Encapsulation, Framing, SYNC_BYTE, TS_PACKET_LEN, TS_RS_PACKET_LEN};

/// Most TS packets in a raw UDP datagram (7 × 188 = 1,316 bytes fits a 1,500-byte MTU).
const MAX_RAW_PACKETS: usize = 7;
/// Most TS packets in an RTP payload (the RTP header is evidence enough for jumbo frames).
const MAX_RTP_PACKETS: usize = 64;
/// RTP fixed header length (RFC 3550 section 5.1).
const RTP_FIXED: usize = 12;

/// Whether `p` is `n` packets of `len` bytes, `1 <= n <= max`, each starting with a
/// sync byte.
fn all_synced(p: &[u8], len: usize, max: usize) -> Option<usize> {
    if p.is_empty() || p.len() % len != 0 {
        return None;
    }
    let n = p.len() / len;
    (n <= max && p.chunks_exact(len).all(|c| c[0] == SYNC_BYTE)).then_some(n)
}

/// The bounds of an RTP packet's payload (RFC 3550 section 5.1: CSRCs, header
/// extension, padding) and its payload type, when `p` has a version-2 header whose
/// lengths fit.
pub(crate) fn rtp_payload(p: &[u8]) -> Option<(usize, usize, u8)> {
    let fixed = p.get(..RTP_FIXED)?;
    if fixed[0] >> 6 != 2 {
        return None;
    }
    let pt = fixed[1] & 0x7f;
    let mut start = RTP_FIXED + 4 * usize::from(fixed[0] & 0x0f);
    if fixed[0] & 0x10 != 0 {
        let ext = p.get(start..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = p.len();
    if fixed[0] & 0x20 != 0 {
        let pad = usize::from(*p.last()?);
        if pad == 0 {
            return None;
        }
        end = end.checked_sub(pad)?;
    }
    (start <= end).then_some((start, end, pt))
}

/// Finds the TS packets in a UDP payload: see [`super::detect`].
pub(crate) fn detect(p: &[u8]) -> Option<Framing> {
    for len in [TS_PACKET_LEN, TS_RS_PACKET_LEN] {
        if let Some(n) = all_synced(p, len, MAX_RAW_PACKETS) {
            return Some(Framing {
                encapsulation: Encapsulation::Raw,
                offset: 0,
                packet_len: len as u16,
                packets: n as u16,
            });
        }
    }
    let (start, end, pt) = rtp_payload(p)?;
    let body = p.get(start..end)?;
    for len in [TS_PACKET_LEN, TS_RS_PACKET_LEN] {
        if let Some(n) = all_synced(body, len, MAX_RTP_PACKETS) {
            return Some(Framing {
                encapsulation: Encapsulation::Rtp { payload_type: pt },
                offset: start as u16,
                packet_len: len as u16,
                packets: n as u16,
            });
        }
    }
    None
}

/// What a [`ByteStream`] finds.
pub(crate) enum StreamEvent<'a> {
    /// A packet whose sync byte was right (its first 188 bytes).
    Packet(&'a [u8; TS_PACKET_LEN]),
    /// A packet slot without a sync byte while locked (TR 101 290 1.2); the slot is
    /// skipped.
    SyncByteError,
    /// The lock was lost: two consecutive slots without a sync byte (TR 101 290 1.1).
    SyncLoss,
    /// Bytes dropped while searching for the lock.
    Skipped(usize),
}

/// Sync bytes in succession, at one packet length's spacing, that acquire the lock: TR 101
/// 290's recommended 5 (section 5.2.1, TS_sync_loss). Three would lock on random bytes
/// about once per 32 KiB (encrypted segments are such bytes).
const LOCK_SYNCS: usize = 5;
/// Bytes kept between calls while searching: every position not yet decided lies within
/// the last (LOCK_SYNCS − 1) × 204 bytes.
const WINDOW: usize = (LOCK_SYNCS - 1) * TS_RS_PACKET_LEN;
/// Consecutive bad sync bytes that lose the lock.
const LOSS_AFTER: u8 = 2;

/// A TS byte stream cut anyhow into calls: finds the packet boundaries ([`LOCK_SYNCS`]
/// sync bytes at 188 or 204-byte spacing to lock), keeps a partial packet between calls in a fixed
/// buffer and loses the lock after two slots without a sync byte.
#[derive(Clone, Debug)]
pub(crate) struct ByteStream {
    locked: bool,
    packet_len: usize,
    part: [u8; TS_RS_PACKET_LEN],
    part_len: usize,
    bad_run: u8,
    win: [u8; WINDOW],
    win_len: usize,
}

impl Default for ByteStream {
    fn default() -> Self {
        ByteStream {
            locked: false,
            packet_len: TS_PACKET_LEN,
            part: [0; TS_RS_PACKET_LEN],
            part_len: 0,
            bad_run: 0,
            win: [0; WINDOW],
            win_len: 0,
        }
    }
}

impl ByteStream {
    /// The packet length locked on, if locked.
    pub fn packet_len(&self) -> Option<usize> {
        self.locked.then_some(self.packet_len)
    }

    /// The next bytes of the stream.
    pub fn push(&mut self, bytes: &[u8], f: &mut impl FnMut(StreamEvent<'_>)) {
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = if self.locked {
                self.feed_locked(rest, f)
            } else {
                self.search(rest, f)
            };
        }
    }

    /// One packet slot while locked; false when the lock is lost.
    fn slot(&mut self, pkt: &[u8], f: &mut impl FnMut(StreamEvent<'_>)) -> bool {
        if pkt.first() == Some(&SYNC_BYTE) {
            self.bad_run = 0;
            if let Some(p) = pkt.get(..TS_PACKET_LEN).and_then(|p| p.try_into().ok()) {
                f(StreamEvent::Packet(p));
            }
            return true;
        }
        f(StreamEvent::SyncByteError);
        self.bad_run += 1;
        if self.bad_run >= LOSS_AFTER {
            self.locked = false;
            self.bad_run = 0;
            f(StreamEvent::SyncLoss);
            return false;
        }
        true
    }

    /// Returns the bytes left to search when the lock is lost.
    fn feed_locked<'b>(
        &mut self,
        bytes: &'b [u8],
        f: &mut impl FnMut(StreamEvent<'_>),
    ) -> &'b [u8] {
        let n = self.packet_len;
        let mut rest = bytes;
        if self.part_len > 0 {
            let take = (n - self.part_len).min(rest.len());
            self.part[self.part_len..self.part_len + take].copy_from_slice(&rest[..take]);
            self.part_len += take;
            rest = &rest[take..];
            if self.part_len < n {
                return &[];
            }
            self.part_len = 0;
            let pkt = self.part;
            if !self.slot(&pkt[..n], f) {
                // Search from the byte after the bad slot's first, then go on with `rest`
                // (the window is empty: it is only used while searching).
                self.push(&pkt[1..n], f);
                return rest;
            }
        }
        while rest.len() >= n {
            let (pkt, after) = rest.split_at(n);
            if !self.slot(pkt, f) {
                return &rest[1..];
            }
            rest = after;
        }
        self.part[..rest.len()].copy_from_slice(rest);
        self.part_len = rest.len();
        &[]
    }

    /// Searches the window and `rest` for a lock; returns what follows in `rest` once
    /// locked (the window's bytes from the lock on are fed first), or nothing.
    fn search<'b>(&mut self, rest: &'b [u8], f: &mut impl FnMut(StreamEvent<'_>)) -> &'b [u8] {
        let wl = self.win_len;
        let total = wl + rest.len();
        let at = |win: &[u8; WINDOW], i: usize| {
            if i < wl {
                win[i]
            } else {
                rest[i - wl]
            }
        };
        let mut p = 0;
        let mut lock = None;
        'scan: while p < total {
            if at(&self.win, p) == SYNC_BYTE {
                for len in [TS_PACKET_LEN, TS_RS_PACKET_LEN] {
                    if p + (LOCK_SYNCS - 1) * len >= total {
                        break 'scan;
                    }
                    if (1..LOCK_SYNCS).all(|k| at(&self.win, p + k * len) == SYNC_BYTE) {
                        lock = Some(len);
                        break 'scan;
                    }
                }
            }
            p += 1;
        }
        if p > 0 {
            f(StreamEvent::Skipped(p));
        }
        match lock {
            Some(len) => {
                self.locked = true;
                self.packet_len = len;
                self.part_len = 0;
                self.bad_run = 0;
                self.win_len = 0;
                if p < wl {
                    let win = self.win;
                    self.push(&win[p..wl], f);
                    rest
                } else {
                    &rest[p - wl..]
                }
            }
            None => {
                // Keep the undecided tail [p, total): at most WINDOW bytes.
                let keep = total - p;
                let mut tmp = [0u8; WINDOW];
                for (i, b) in tmp.iter_mut().enumerate().take(keep) {
                    *b = at(&self.win, p + i);
                }
                self.win[..keep].copy_from_slice(&tmp[..keep]);
                self.win_len = keep;
                &[]
            }
        }
    }
}

/// Where an RTSP interleaved reader stands (RFC 2326 section 10.12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Inter {
    /// At a frame boundary: a `$` is expected.
    #[default]
    Boundary,
    /// Framing lost: looking for the next `$`.
    Hunt,
    /// Reading the channel and the 16-bit length.
    Head,
    /// The frame's first data byte decides: 0x47 raw TS, version 2 RTP.
    First,
    /// Reading the RTP fixed header.
    Rtp,
    /// Skipping CSRCs (then the extension header, if any).
    Csrc { ext: bool },
    /// Reading the 4-byte extension header.
    ExtHead,
    /// Skipping bytes, then TS data.
    Skip,
    /// TS bytes, with `trim` bytes of RTP padding at the frame's end.
    Data { trim: usize },
    /// A frame that is not TS (RTCP): skipped whole.
    Drop,
}

/// RTSP interleaved binary data (`$`, channel, 16-bit length, data) with or without an
/// RTP header inside, cut anyhow into calls: emits the TS bytes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Interleave {
    state: Inter,
    buf: [u8; RTP_FIXED],
    buf_len: usize,
    frame_left: usize,
    skip: usize,
    /// The current frame's RTP header has the padding bit.
    padded: bool,
    /// Frames read.
    pub frames: u64,
    /// Times the framing was lost (a frame boundary without `$`).
    pub resyncs: u64,
    /// Bytes skipped while looking for a `$`.
    pub skipped: u64,
    /// Frames skipped as RTCP or cut before their RTP header's end.
    pub dropped: u64,
}

impl Interleave {
    /// The next bytes of the TCP direction; `emit` gets the TS bytes in order.
    pub fn push(&mut self, bytes: &[u8], emit: &mut impl FnMut(&[u8])) {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.state {
                Inter::Boundary => {
                    if rest[0] == b'$' {
                        self.state = Inter::Head;
                        self.buf_len = 0;
                        rest = &rest[1..];
                    } else {
                        self.resyncs += 1;
                        self.state = Inter::Hunt;
                    }
                }
                Inter::Hunt => match rest.iter().position(|&b| b == b'$') {
                    Some(i) => {
                        self.skipped += i as u64;
                        rest = &rest[i..];
                        self.state = Inter::Boundary;
                    }
                    None => {
                        self.skipped += rest.len() as u64;
                        rest = &[];
                    }
                },
                Inter::Head => {
                    let take = (3 - self.buf_len).min(rest.len());
                    self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&rest[..take]);
                    self.buf_len += take;
                    rest = &rest[take..];
                    if self.buf_len == 3 {
                        self.frames += 1;
                        self.frame_left =
                            usize::from(u16::from_be_bytes([self.buf[1], self.buf[2]]));
                        self.buf_len = 0;
                        self.state = if self.frame_left == 0 {
                            Inter::Boundary
                        } else {
                            Inter::First
                        };
                    }
                }
                Inter::First => {
                    self.state = if rest[0] >> 6 == 2 {
                        Inter::Rtp
                    } else {
                        // TS (0x47) or unknown: the byte stream's sync lock sorts it out.
                        self.padded = false;
                        Inter::Data { trim: 0 }
                    };
                }
                Inter::Rtp => {
                    let take = (RTP_FIXED - self.buf_len)
                        .min(rest.len())
                        .min(self.frame_left);
                    self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&rest[..take]);
                    self.buf_len += take;
                    self.frame_left -= take;
                    rest = &rest[take..];
                    if self.buf_len == RTP_FIXED {
                        let b0 = self.buf[0];
                        if (200..=204).contains(&self.buf[1]) {
                            self.dropped += 1;
                            self.state = Inter::Drop;
                        } else {
                            self.skip = 4 * usize::from(b0 & 0x0f);
                            self.padded = b0 & 0x20 != 0;
                            self.state = Inter::Csrc {
                                ext: b0 & 0x10 != 0,
                            };
                        }
                        self.buf_len = 0;
                    } else if self.frame_left == 0 {
                        self.dropped += 1;
                    }
                }
                Inter::Csrc { ext } => {
                    let take = self.skip.min(rest.len()).min(self.frame_left);
                    self.skip -= take;
                    self.frame_left -= take;
                    rest = &rest[take..];
                    if self.skip == 0 {
                        if ext {
                            self.state = Inter::ExtHead;
                        } else {
                            self.start_data();
                        }
                    }
                }
                Inter::ExtHead => {
                    let take = (4 - self.buf_len).min(rest.len()).min(self.frame_left);
                    self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&rest[..take]);
                    self.buf_len += take;
                    self.frame_left -= take;
                    rest = &rest[take..];
                    if self.buf_len == 4 {
                        self.skip = 4 * usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                        self.buf_len = 0;
                        self.state = Inter::Skip;
                    }
                }
                Inter::Skip => {
                    let take = self.skip.min(rest.len()).min(self.frame_left);
                    self.skip -= take;
                    self.frame_left -= take;
                    rest = &rest[take..];
                    if self.skip == 0 {
                        self.start_data();
                    }
                }
                Inter::Data { trim } => {
                    let data_left = self.frame_left.saturating_sub(trim);
                    let take = data_left.min(rest.len());
                    if take > 0 {
                        emit(&rest[..take]);
                        self.frame_left -= take;
                        rest = &rest[take..];
                    }
                    if self.frame_left <= trim {
                        // Then the padding (if any).
                        self.state = Inter::Drop;
                    }
                }
                Inter::Drop => {
                    let take = self.frame_left.min(rest.len());
                    self.frame_left -= take;
                    rest = &rest[take..];
                }
            }
            if self.frame_left == 0
                && !matches!(
                    self.state,
                    Inter::Boundary | Inter::Hunt | Inter::Head | Inter::First
                )
            {
                self.state = Inter::Boundary;
            }
        }
    }

    /// After the RTP header: the payload, less the padding guessed from the TS length
    /// (see the [module documentation](super#carriage)).
    fn start_data(&mut self) {
        let padded = self.padded;
        let l = self.frame_left;
        let trim = if padded && l > 0 {
            l - (l - 1) / TS_PACKET_LEN * TS_PACKET_LEN
        } else {
            0
        };
        self.state = Inter::Data { trim };
    }
}
