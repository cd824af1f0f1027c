//! One DNS message read with simple-dns, whole or laxly (see the
//! [module documentation](super#lax-reading)): what a row needs of it.

use simple_dns::{header_buffer, Name, Packet, PacketFlag, ResourceRecord, QCLASS, QTYPE};

/// Header layout (RFC 1035 section 4.1.1).
mod field {
    use core::ops::Range;

    /// Flags and codes: QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE.
    pub const FLAGS: Range<usize> = 2..4;
    /// The four section counts: QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT.
    pub const COUNTS: Range<usize> = 4..12;
    /// Length of the header.
    pub const HEADER_LEN: usize = 12;
}

/// Bits of the flags word not read through the crate (which folds unassigned OPCODE and
/// RCODE values into `Reserved` and does not expose Z).
mod flags {
    pub const OPCODE_MASK: u16 = 0x7800;
    pub const OPCODE_SHIFT: u32 = 11;
    /// The reserved bit (RFC 1035 section 4.1.1, "Z"; RFC 2535 took the two below it).
    pub const Z: u16 = 0x0040;
    pub const RCODE_MASK: u16 = 0x000f;
}

/// OPCODE values (IANA "DNS OPCODEs") the crate knows.
mod opcode {
    pub const QUERY: u8 = 0;
    pub const IQUERY: u8 = 1;
    pub const STATUS: u8 = 2;
    pub const NOTIFY: u8 = 4;
    pub const UPDATE: u8 = 5;
}

/// Smallest question on the wire: a root name (1 byte), QTYPE and QCLASS.
const MIN_QUESTION: usize = 5;
/// Smallest resource record: a root name, TYPE, CLASS, TTL and RDLENGTH.
const MIN_RECORD: usize = 11;
/// Type and class the lax reader puts in place of ones the crate refuses (A, IN).
const PLACEHOLDER_TYPE_CLASS: [u8; 4] = [0, 1, 0, 1];

/// Why a message gives no row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Shorter than the header.
    TooShort,
    /// The reserved Z bit is set.
    BadHeader,
    /// An opcode that is not DNS's.
    NotDns,
    /// The first question does not parse.
    BadQuestion,
}

/// The first question.
pub(crate) struct Question<'a> {
    pub name: Name<'a>,
    pub qtype: u16,
    pub qclass: u16,
}

/// What a row needs of one message.
pub(crate) struct Message<'a> {
    pub id: u16,
    pub response: bool,
    pub truncated: bool,
    pub rcode: u8,
    /// ANCOUNT as the header states it.
    pub ancount: u16,
    pub question: Option<Question<'a>>,
    /// The answer records that parsed.
    pub answers: Vec<ResourceRecord<'a>>,
    /// Not everything parsed.
    pub malformed: bool,
}

/// The header's facts, read before any parse.
#[derive(Clone, Copy, Debug)]
struct Header {
    id: u16,
    response: bool,
    truncated: bool,
    rcode: u8,
    counts: [u16; 4],
}

fn header(msg: &[u8]) -> Result<Header, Reject> {
    let (Ok(id), Some(&[hi, lo])) = (header_buffer::id(msg), msg.get(field::FLAGS)) else {
        return Err(Reject::TooShort);
    };
    let bits = u16::from_be_bytes([hi, lo]);
    if bits & flags::Z != 0 {
        return Err(Reject::BadHeader);
    }
    let op = ((bits & flags::OPCODE_MASK) >> flags::OPCODE_SHIFT) as u8;
    if !matches!(
        op,
        opcode::QUERY | opcode::IQUERY | opcode::STATUS | opcode::NOTIFY | opcode::UPDATE
    ) {
        return Err(Reject::NotDns);
    }
    // The header is whole (checked by `id` above), so these cannot fail.
    let count = |f: fn(&[u8]) -> simple_dns::Result<u16>| f(msg).unwrap_or(0);
    Ok(Header {
        id,
        response: header_buffer::has_flags(msg, PacketFlag::RESPONSE).unwrap_or(false),
        truncated: header_buffer::has_flags(msg, PacketFlag::TRUNCATION).unwrap_or(false),
        rcode: (bits & flags::RCODE_MASK) as u8,
        counts: [
            count(header_buffer::questions),
            count(header_buffer::answers),
            count(header_buffer::name_servers),
            count(header_buffer::additional_records),
        ],
    })
}

/// Whether the counts leave room for the smallest possible records: if not, a whole
/// parse cannot succeed (and would reserve room for all of them first).
fn counts_fit(len: usize, counts: [u16; 4]) -> bool {
    let [qd, an, ns, ar] = counts.map(usize::from);
    qd * MIN_QUESTION + (an + ns + ar) * MIN_RECORD <= len - field::HEADER_LEN
}

/// Reads one message. `scratch` holds the copy the lax path reads (left empty when the
/// message parses whole); the result may borrow it.
pub(crate) fn read<'a>(msg: &'a [u8], scratch: &'a mut Vec<u8>) -> Result<Message<'a>, Reject> {
    let h = header(msg)?;
    if counts_fit(msg.len(), h.counts) {
        if let Ok(packet) = Packet::parse(msg) {
            return Ok(message(h, packet, None, false));
        }
    }
    lax(msg, h, scratch)
}

fn message<'a>(
    h: Header,
    mut packet: Packet<'a>,
    real_type_class: Option<(u16, u16)>,
    malformed: bool,
) -> Message<'a> {
    let question = if packet.questions.is_empty() {
        None
    } else {
        let q = packet.questions.swap_remove(0);
        let (qtype, qclass) = real_type_class.unwrap_or_else(|| {
            let class = u16::from(q.qclass) | if q.unicast_response { 0x8000 } else { 0 };
            (u16::from(q.qtype), class)
        });
        Some(Question {
            name: q.qname,
            qtype,
            qclass,
        })
    };
    Message {
        id: h.id,
        response: h.response,
        truncated: h.truncated,
        rcode: h.rcode,
        ancount: h.counts[1],
        question,
        answers: std::mem::take(&mut packet.answers),
        malformed,
    }
}

/// The offset after the name starting at `at` (RFC 1035 section 4.1.4): the crate does
/// not say where a name it refused ends.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    const POINTER: u8 = 0xc0;
    loop {
        let len = *msg.get(at)?;
        match len & POINTER {
            0 if len == 0 => return Some(at + 1),
            0 => at += 1 + usize::from(len),
            POINTER => return msg.get(at + 1).map(|_| at + 2),
            _ => return None, // extended label types (RFC 6891 section 5): none in use
        }
    }
}

fn set_counts(copy: &mut [u8], counts: [u16; 4]) {
    for (slot, n) in copy[field::COUNTS].chunks_exact_mut(2).zip(counts) {
        slot.copy_from_slice(&n.to_be_bytes());
    }
}

fn parses(copy: &mut [u8], counts: [u16; 4]) -> bool {
    set_counts(copy, counts);
    Packet::parse(copy).is_ok()
}

/// The malformed path: see the module documentation.
fn lax<'a>(msg: &'a [u8], h: Header, scratch: &'a mut Vec<u8>) -> Result<Message<'a>, Reject> {
    scratch.clear();
    scratch.extend_from_slice(msg);
    let room = msg.len() - field::HEADER_LEN;
    let [qd, an, ..] = h.counts;
    let qd = qd.min(u16::try_from(room / MIN_QUESTION).unwrap_or(u16::MAX));
    let an = an.min(u16::try_from(room / MIN_RECORD).unwrap_or(u16::MAX));

    // 1. A first question of a type or class the crate refuses.
    let mut real = None;
    if qd > 0 {
        if let Some(end) = skip_name(msg, field::HEADER_LEN) {
            if let Some(&[t0, t1, c0, c1]) = msg.get(end..end + 4) {
                let (t, c) = (u16::from_be_bytes([t0, t1]), u16::from_be_bytes([c0, c1]));
                if QTYPE::try_from(t).is_err() || QCLASS::try_from(c & 0x7fff).is_err() {
                    scratch[end..end + 4].copy_from_slice(&PLACEHOLDER_TYPE_CLASS);
                    real = Some((t, c));
                    if counts_fit(msg.len(), h.counts) && parses(scratch, h.counts) {
                        let copy: &'a Vec<u8> = scratch;
                        return match Packet::parse(copy) {
                            Ok(packet) => Ok(message(h, packet, real, false)),
                            Err(_) => Err(Reject::BadQuestion),
                        };
                    }
                }
            }
        }
    }

    // 2. Fewer records: every question and as many answers as parse.
    let counts = if parses(scratch, [qd, an, 0, 0]) {
        [qd, an, 0, 0]
    } else if parses(scratch, [qd, 0, 0, 0]) {
        // (qd, 0) parses and (qd, an) does not: the largest count in between that does.
        let (mut lo, mut hi) = (0u16, an);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if parses(scratch, [qd, mid, 0, 0]) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        [qd, lo, 0, 0]
    } else if qd > 1 && parses(scratch, [1, 0, 0, 0]) {
        [1, 0, 0, 0]
    } else {
        return Err(Reject::BadQuestion);
    };
    set_counts(scratch, counts);
    let copy: &'a Vec<u8> = scratch;
    match Packet::parse(copy) {
        Ok(packet) => Ok(message(h, packet, real, true)),
        Err(_) => Err(Reject::BadQuestion),
    }
}

/// Whether `bytes` (after a TCP direction lost its framing) start like a message: a
/// length prefix of at least a header, the reserved bit clear, opcode QUERY, one question,
/// the query / response bit `response` when known, and, when the whole message is
/// there, a message that parses whole.
pub(crate) fn looks_like_start(bytes: &[u8], response: Option<bool>) -> bool {
    let Some(&[l0, l1]) = bytes.get(..2) else {
        return false;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if len < field::HEADER_LEN {
        return false;
    }
    let msg = &bytes[2..bytes.len().min(2 + len)];
    let Ok(h) = header(msg) else {
        return false;
    };
    let Some(&[hi, _]) = msg.get(field::FLAGS) else {
        return false;
    };
    let op = ((u16::from_be_bytes([hi, 0]) & flags::OPCODE_MASK) >> flags::OPCODE_SHIFT) as u8;
    if op != opcode::QUERY || h.counts[0] != 1 || response.is_some_and(|r| r != h.response) {
        return false;
    }
    msg.len() < len || (counts_fit(msg.len(), h.counts) && Packet::parse(msg).is_ok())
}

/// The presentation bytes of a name (see the [module documentation](super#names)),
/// lower-cased, handed one at a time to `f` until it returns false. Returns whether `f`
/// took them all.
pub(crate) fn for_each_name_byte(name: &Name<'_>, mut f: impl FnMut(u8) -> bool) -> bool {
    let labels = name.get_labels();
    if labels.is_empty() {
        return f(b'.');
    }
    for (i, label) in labels.iter().enumerate() {
        if i > 0 && !f(b'.') {
            return false;
        }
        for &b in label.as_ref() {
            let ok = match b {
                b'.' | b'\\' => f(b'\\') && f(b),
                0x21..=0x7e => f(b.to_ascii_lowercase()),
                _ => f(b'\\') && f(b'0' + b / 100) && f(b'0' + b / 10 % 10) && f(b'0' + b % 10),
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// A name in presentation form (ASCII only).
pub(crate) fn name_string(name: &Name<'_>) -> String {
    let mut s = String::with_capacity(name.get_labels().iter().map(|l| l.len() + 1).sum());
    for_each_name_byte(name, |b| {
        s.push(char::from(b));
        true
    });
    s
}

/// Whether `name` reads as `text` (a string made by [`name_string`]).
pub(crate) fn name_is(name: &Name<'_>, text: &str) -> bool {
    let mut rest = text.as_bytes().iter();
    for_each_name_byte(name, |b| rest.next() == Some(&b)) && rest.next().is_none()
}
