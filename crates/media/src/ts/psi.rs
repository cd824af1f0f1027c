//! PSI sections (ISO/IEC 13818-1 section 2.4.4): assembly across packets in a fixed
//! buffer, CRC-32/MPEG-2, the PAT (2.4.4.3) and the PMT (2.4.4.8), and the labels of
//! stream types (Table 2-34) and of the DVB descriptors that qualify private PES (ETSI
//! EN 300 468 section 6.2).

use crc::{Crc, CRC_32_MPEG_2};

/// Largest PSI section: 3 header bytes and a section_length of at most 1,021 (section
/// 2.4.4.4 for PAT and PMT).
pub(crate) const MAX_SECTION: usize = 1024;
const MAX_SECTION_LENGTH: usize = MAX_SECTION - 3;
/// PAT and PMT table ids.
pub(crate) const TID_PAT: u8 = 0x00;
pub(crate) const TID_PMT: u8 = 0x02;

const MPEG2: Crc<u32> = Crc::<u32>::new(&CRC_32_MPEG_2);

/// The CRC-32/MPEG-2 of `data` (Annex A).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    MPEG2.checksum(data)
}

/// What the assembler hands out.
pub(crate) enum SectionEvent<'a> {
    /// A complete section whose CRC is right (or which has no CRC: section_syntax_indicator
    /// 0), with its CRC (0 without one).
    Section(&'a [u8], u32),
    /// A complete section whose CRC is wrong (TR 101 290 2.2).
    CrcError,
    /// A section header announcing more than 1,021 bytes, or a pointer_field past the
    /// payload: the bytes are dropped.
    Malformed,
    /// A section left unfinished (a new one started, or packets were lost).
    Incomplete,
}

/// One PID's section being assembled.
#[derive(Clone, Debug)]
pub(crate) struct SectionBuf {
    data: [u8; MAX_SECTION],
    len: usize,
    active: bool,
}

impl Default for SectionBuf {
    fn default() -> Self {
        SectionBuf {
            data: [0; MAX_SECTION],
            len: 0,
            active: false,
        }
    }
}

impl SectionBuf {
    /// Drops a partial section (after lost packets).
    pub fn reset(&mut self, f: &mut impl FnMut(SectionEvent<'_>)) {
        if self.active && self.len > 0 {
            f(SectionEvent::Incomplete);
        }
        self.active = false;
        self.len = 0;
    }

    /// A packet's payload (section 2.4.4.1: with PUSI, a pointer_field first).
    pub fn feed(&mut self, pusi: bool, payload: &[u8], f: &mut impl FnMut(SectionEvent<'_>)) {
        if !pusi {
            if self.active {
                // No section starts in a packet without PUSI: what follows is stuffing.
                self.append(payload, f);
            }
            return;
        }
        let Some((&ptr, body)) = payload.split_first() else {
            return;
        };
        let Some((tail, mut rest)) =
            (usize::from(ptr) <= body.len()).then(|| body.split_at(usize::from(ptr)))
        else {
            self.reset(f);
            f(SectionEvent::Malformed);
            return;
        };
        if self.active {
            self.append(tail, f);
        }
        self.reset(f);
        while let Some(&tid) = rest.first() {
            if tid == 0xff {
                break;
            }
            self.active = true;
            self.len = 0;
            rest = self.append(rest, f);
            if self.active {
                break;
            }
        }
    }

    /// Appends bytes to the section; returns what follows its end.
    fn append<'b>(
        &mut self,
        mut bytes: &'b [u8],
        f: &mut impl FnMut(SectionEvent<'_>),
    ) -> &'b [u8] {
        loop {
            let need = if self.len < 3 {
                3 - self.len
            } else {
                let total =
                    3 + usize::from(u16::from_be_bytes([self.data[1], self.data[2]]) & 0x0fff);
                total - self.len
            };
            if need == 0 {
                let total = self.len;
                self.active = false;
                self.len = 0;
                let sec = &self.data[..total];
                let syntax = sec[1] & 0x80 != 0;
                if syntax {
                    if total < 12 {
                        f(SectionEvent::Malformed);
                    } else {
                        let (body, crc) = sec.split_at(total - 4);
                        let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
                        if crc32(body) == crc {
                            f(SectionEvent::Section(sec, crc));
                        } else {
                            f(SectionEvent::CrcError);
                        }
                    }
                } else {
                    f(SectionEvent::Section(sec, 0));
                }
                return bytes;
            }
            if bytes.is_empty() {
                return bytes;
            }
            let take = need.min(bytes.len());
            self.data[self.len..self.len + take].copy_from_slice(&bytes[..take]);
            self.len += take;
            bytes = &bytes[take..];
            if self.len == 3 {
                let sl = usize::from(u16::from_be_bytes([self.data[1], self.data[2]]) & 0x0fff);
                if sl > MAX_SECTION_LENGTH {
                    self.active = false;
                    self.len = 0;
                    f(SectionEvent::Malformed);
                    return &[];
                }
            }
        }
    }
}

/// The long-form header fields shared by PAT and PMT (section 2.4.4.3 and 2.4.4.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LongHeader {
    pub table_id: u8,
    /// transport_stream_id (PAT) or program_number (PMT).
    pub id: u16,
    pub version: u8,
}

/// The long header of a complete section of at least 12 bytes (CRC checked before).
pub(crate) fn long_header(sec: &[u8]) -> Option<LongHeader> {
    let h = sec.get(..8)?;
    (h[1] & 0x80 != 0).then(|| LongHeader {
        table_id: h[0],
        id: u16::from_be_bytes([h[3], h[4]]),
        version: (h[5] >> 1) & 0x1f,
    })
}

/// The (program_number, PID) entries of a PAT section; program 0 gives the network PID.
pub(crate) fn pat_entries(sec: &[u8]) -> impl Iterator<Item = (u16, u16)> + '_ {
    let body = sec.get(8..sec.len().saturating_sub(4)).unwrap_or(&[]);
    body.chunks_exact(4).map(|e| {
        (
            u16::from_be_bytes([e[0], e[1]]),
            u16::from_be_bytes([e[2] & 0x1f, e[3]]),
        )
    })
}

/// One elementary stream of a PMT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EsEntry<'a> {
    pub stream_type: u8,
    pub pid: u16,
    pub descriptors: &'a [u8],
}

/// A PMT section's PCR_PID and its elementary streams (a cut entry ends the loop).
pub(crate) fn pmt(sec: &[u8]) -> Option<(u16, impl Iterator<Item = EsEntry<'_>>)> {
    let h = sec.get(..12)?;
    let pcr_pid = u16::from_be_bytes([h[8] & 0x1f, h[9]]);
    let pil = usize::from(u16::from_be_bytes([h[10], h[11]]) & 0x0fff);
    let end = sec.len().checked_sub(4)?;
    let mut loop_bytes = sec.get(12 + pil..end).unwrap_or(&[]);
    let iter = std::iter::from_fn(move || {
        let e = loop_bytes.get(..5)?;
        let stream_type = e[0];
        let pid = u16::from_be_bytes([e[1] & 0x1f, e[2]]);
        let len = usize::from(u16::from_be_bytes([e[3], e[4]]) & 0x0fff);
        let Some(descriptors) = loop_bytes.get(5..5 + len) else {
            loop_bytes = &[];
            return None;
        };
        loop_bytes = &loop_bytes[5 + len..];
        Some(EsEntry {
            stream_type,
            pid,
            descriptors,
        })
    });
    Some((pcr_pid, iter))
}

/// The tags of a descriptor loop (a cut descriptor ends it).
fn descriptor_tags(mut d: &[u8]) -> impl Iterator<Item = u8> + '_ {
    std::iter::from_fn(move || {
        let (&tag, rest) = d.split_first()?;
        let (&len, rest) = rest.split_first()?;
        d = rest.get(usize::from(len)..).unwrap_or(&[]);
        Some(tag)
    })
}

/// The label of an elementary stream: its stream_type (ISO/IEC 13818-1 Table 2-34,
/// with the ATSC A/52 values 0x81 and 0x87), and for private PES (0x06) the DVB
/// descriptor that says what it carries (EN 300 468: AC-3 0x6A, E-AC-3 0x7A, DTS 0x7B,
/// AAC 0x7C, subtitling 0x59, teletext 0x56, VBI 0x45).
pub fn stream_label(stream_type: u8, descriptors: &[u8]) -> &'static str {
    match stream_type {
        0x01 => "mpeg1_video",
        0x02 => "mpeg2_video",
        0x03 => "mpeg1_audio",
        0x04 => "mpeg2_audio",
        0x05 => "private_sections",
        0x06 => {
            for tag in descriptor_tags(descriptors) {
                let label = match tag {
                    0x6A => "ac3",
                    0x7A => "eac3",
                    0x7B => "dts",
                    0x7C => "aac",
                    0x59 => "dvb_subtitles",
                    0x56 => "teletext",
                    0x45 => "vbi",
                    _ => continue,
                };
                return label;
            }
            "private_pes"
        }
        0x0B..=0x0D => "dsmcc",
        0x0F => "aac_adts",
        0x10 => "mpeg4_video",
        0x11 => "aac_latm",
        0x15 => "metadata",
        0x1B => "h264",
        0x1C => "mpeg4_audio",
        0x20 => "h264_mvc",
        0x24 => "hevc",
        0x33 => "vvc",
        0x81 => "ac3",
        0x86 => "scte35",
        0x87 => "eac3",
        _ => "other",
    }
}
