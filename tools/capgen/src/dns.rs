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
}
