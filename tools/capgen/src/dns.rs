//! DNS messages in wire format (RFC 1035 §4.1): one question, A or AAAA answers
//! (RFC 3596), answer names compressed to the question (§4.1.4).

use std::net::IpAddr;

pub const QTYPE_A: u16 = 1;
pub const QTYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// Flags: RD set (query); QR, RD, RA set, RCODE 0 (answer).
const FLAGS_QUERY: u16 = 0x0100;
const FLAGS_ANSWER: u16 = 0x8180;
/// Pointer to the question name at offset 12.
const NAME_PTR: [u8; 2] = [0xC0, 0x0C];

fn header(b: &mut Vec<u8>, id: u16, flags: u16, ancount: u16) {
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&ancount.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]);
}

/// Appends `name` (dot-separated, validated by the scenario) as labels.
pub fn write_name(b: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        b.push(l.len() as u8);
        b.extend_from_slice(l);
    }
    b.push(0);
}

/// Appends a name built from labels given as byte slices.
pub fn write_labels(b: &mut Vec<u8>, labels: &[&[u8]]) {
    for l in labels {
        let l = &l[..l.len().min(63)];
        b.push(l.len() as u8);
        b.extend_from_slice(l);
    }
    b.push(0);
}

fn question_tail(b: &mut Vec<u8>, qtype: u16) {
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&CLASS_IN.to_be_bytes());
}

/// Appends a query; `name` writes the question name.
pub fn query(b: &mut Vec<u8>, id: u16, qtype: u16, name: impl FnOnce(&mut Vec<u8>)) {
    header(b, id, FLAGS_QUERY, 0);
    name(b);
    question_tail(b, qtype);
}

/// Appends an answer with every address in `answers` (of `qtype`'s family).
pub fn answer(
    b: &mut Vec<u8>,
    id: u16,
    qtype: u16,
    ttl: u32,
    answers: &[IpAddr],
    name: impl FnOnce(&mut Vec<u8>),
) {
    header(b, id, FLAGS_ANSWER, answers.len() as u16);
    name(b);
    question_tail(b, qtype);
    for a in answers {
        b.extend_from_slice(&NAME_PTR);
        match a {
            IpAddr::V4(v) => {
                b.extend_from_slice(&QTYPE_A.to_be_bytes());
                b.extend_from_slice(&CLASS_IN.to_be_bytes());
                b.extend_from_slice(&ttl.to_be_bytes());
                b.extend_from_slice(&4u16.to_be_bytes());
                b.extend_from_slice(&v.octets());
            }
            IpAddr::V6(v) => {
                b.extend_from_slice(&QTYPE_AAAA.to_be_bytes());
                b.extend_from_slice(&CLASS_IN.to_be_bytes());
                b.extend_from_slice(&ttl.to_be_bytes());
                b.extend_from_slice(&16u16.to_be_bytes());
                b.extend_from_slice(&v.octets());
            }
        }
    }
}

/// Response codes (RFC 1035 §4.1.1).
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
/// SOA timers of negative answers (RFC 2308 §5: the negative TTL is the SOA MINIMUM).
const SOA_SERIAL: u32 = 2_024_030_101;
const SOA_TIMERS: [u32; 3] = [7_200, 3_600, 1_209_600];

fn ptr(b: &mut Vec<u8>, off: usize) {
    b.extend_from_slice(&(0xC000u16 | (off as u16 & 0x3FFF)).to_be_bytes());
}

/// Appends a response to a query of `qname` with any rcode: for NOERROR the CNAME chain
/// `qname → cnames[0] → …` (RFC 1034 §3.6.2) followed by the addresses of the last name;
/// for NXDOMAIN the chain and the zone's SOA in the authority section (RFC 2308 §2.1,
/// §3); for SERVFAIL the question only. Owner names are compression pointers (§4.1.4).
#[allow(clippy::too_many_arguments)]
pub fn response(
    b: &mut Vec<u8>,
    id: u16,
    qtype: u16,
    ttl: u32,
    rcode: u8,
    qname: &str,
    cnames: &[String],
    answers: &[IpAddr],
) {
    let base = b.len();
    let chain = if rcode == RCODE_SERVFAIL {
        0
    } else {
        cnames.len()
    };
    let addrs = if rcode == RCODE_NOERROR {
        answers.len()
    } else {
        0
    };
    let ns = (rcode == RCODE_NXDOMAIN) as u16;
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&(FLAGS_ANSWER | (rcode as u16 & 0x0F)).to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&((chain + addrs) as u16).to_be_bytes());
    b.extend_from_slice(&ns.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    write_name(b, qname);
    question_tail(b, qtype);
    // Offset (from the message start) of the name owning the next record.
    let mut owner = 12usize;
    let mut owner_name: &str = qname;
    for c in &cnames[..chain] {
        ptr(b, owner);
        b.extend_from_slice(&TYPE_CNAME.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        b.extend_from_slice(&ttl.to_be_bytes());
        let len_at = b.len();
        b.extend_from_slice(&[0, 0]);
        owner = b.len() - base;
        write_name(b, c);
        let rdlen = (b.len() - len_at - 2) as u16;
        b[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        owner_name = c;
    }
    for a in &answers[..addrs] {
        ptr(b, owner);
        match a {
            IpAddr::V4(v) => {
                b.extend_from_slice(&QTYPE_A.to_be_bytes());
                b.extend_from_slice(&CLASS_IN.to_be_bytes());
                b.extend_from_slice(&ttl.to_be_bytes());
                b.extend_from_slice(&4u16.to_be_bytes());
                b.extend_from_slice(&v.octets());
            }
            IpAddr::V6(v) => {
                b.extend_from_slice(&QTYPE_AAAA.to_be_bytes());
                b.extend_from_slice(&CLASS_IN.to_be_bytes());
                b.extend_from_slice(&ttl.to_be_bytes());
                b.extend_from_slice(&16u16.to_be_bytes());
                b.extend_from_slice(&v.octets());
            }
        }
    }
    if ns == 1 {
        // The zone is the parent of the missing name (the name itself if it has one label).
        let first = owner_name.split('.').next().map_or(0, |l| l.len().min(63));
        let zone = if owner_name.contains('.') {
            owner + 1 + first
        } else {
            owner
        };
        ptr(b, zone);
        b.extend_from_slice(&TYPE_SOA.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        b.extend_from_slice(&ttl.to_be_bytes());
        let len_at = b.len();
        b.extend_from_slice(&[0, 0]);
        write_labels_then_ptr(b, b"ns1", zone);
        write_labels_then_ptr(b, b"hostmaster", zone);
        b.extend_from_slice(&SOA_SERIAL.to_be_bytes());
        for t in SOA_TIMERS {
            b.extend_from_slice(&t.to_be_bytes());
        }
        b.extend_from_slice(&ttl.to_be_bytes());
        let rdlen = (b.len() - len_at - 2) as u16;
        b[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }
}

fn write_labels_then_ptr(b: &mut Vec<u8>, label: &[u8], off: usize) {
    b.push(label.len() as u8);
    b.extend_from_slice(label);
    ptr(b, off);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_bytes() {
        let mut b = Vec::new();
        query(&mut b, 0x1234, QTYPE_A, |b| write_name(b, "a.bc"));
        assert_eq!(
            b,
            [
                0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'b', b'c', 0, 0, 1, 0,
                1
            ]
        );
        let mut a = Vec::new();
        answer(
            &mut a,
            7,
            QTYPE_A,
            60,
            &["192.0.2.1".parse().unwrap()],
            |b| write_name(b, "a.bc"),
        );
        assert_eq!(&a[2..8], &[0x81, 0x80, 0, 1, 0, 1]);
        assert_eq!(
            &a[22..],
            &[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]
        );
    }

    #[test]
    fn cname_chain_and_nxdomain_bytes() {
        let mut b = Vec::new();
        let chain = ["e.cdn.net".to_string()];
        let addr = ["192.0.2.1".parse().unwrap()];
        response(&mut b, 1, QTYPE_A, 60, RCODE_NOERROR, "a.bc", &chain, &addr);
        // Header: QR RD RA, rcode 0, 1 question, 2 answers.
        assert_eq!(&b[2..12], &[0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]);
        // CNAME owned by the question name (offset 12); its target starts at offset 34.
        assert_eq!(&b[22..34], &[0xC0, 0x0C, 0, 5, 0, 1, 0, 0, 0, 60, 0, 11]);
        assert_eq!(&b[34..45], b"\x01e\x03cdn\x03net\x00");
        // The A record is owned by the CNAME target.
        assert_eq!(&b[45..47], &[0xC0, 34]);
        assert_eq!(&b[b.len() - 4..], &[192, 0, 2, 1]);

        let mut n = Vec::new();
        response(&mut n, 2, QTYPE_A, 300, RCODE_NXDOMAIN, "a.bc", &[], &addr);
        assert_eq!(&n[2..12], &[0x81, 0x83, 0, 1, 0, 0, 0, 1, 0, 0]);
        // SOA owned by the zone "bc" (offset 12 + 2).
        assert_eq!(&n[22..26], &[0xC0, 14, 0, 6]);
        let mut f = Vec::new();
        response(
            &mut f,
            3,
            QTYPE_AAAA,
            300,
            RCODE_SERVFAIL,
            "a.bc",
            &chain,
            &addr,
        );
        assert_eq!(f.len(), 22);
        assert_eq!(&f[2..4], &[0x81, 0x82]);
    }
}
