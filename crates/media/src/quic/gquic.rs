//! Google QUIC's client hello, as far as its server name: versions up to Q043 send the
//! handshake in the clear (null encryption, a 12-byte message hash before the frames),
//! as a STREAM frame of stream 1 whose data is a QUIC crypto handshake message (tag
//! `CHLO`, entries of tag and end offset, then the values). The `SNI` entry is the name.
//! What is read (the "QUIC Crypto" and "QUIC Wire Layout" documents of the Chromium
//! project, which tshark's gQUIC dissector follows):
//!
//! * public header: flags; an 8-byte connection ID when flag 0x08 is set; the version
//!   when flag 0x01 is set (the client's first packets); no diversification nonce (only
//!   a server's packets carry one, whatever flag 0x04 of a client's says); a packet
//!   number of 1, 2, 4 or 6 bytes by flags 0x30;
//! * the message hash (12 bytes);
//! * frames before the STREAM frame: PADDING ends the packet, PING (0x07) is skipped;
//!   anything else ends the search;
//! * the STREAM frame `1fdooossB`: stream ID of `ss`+1 bytes, an offset of 0 or
//!   `ooo`+1 bytes (it must be 0), a 2-byte data length when `d` is set; multi-byte
//!   fields little-endian up to Q038, big-endian from Q039.

use super::packet::Cursor;

/// Entries of a handshake message read at most.
const MAX_ENTRIES: u16 = 128;

/// The server name of a gQUIC client hello in the clear at the start of `d` (a whole
/// datagram of the client's), lower-cased, at most 255 bytes; `None` when `d` is not one or it has no
/// `SNI` entry. `version` is the connection's (`Q0xx`), for the byte order.
pub(crate) fn chlo_sni(d: &[u8], version: u32) -> Option<String> {
    let digits = &version.to_be_bytes()[1..];
    let number: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    if version.to_be_bytes()[0] != b'Q' || number > 43 {
        return None;
    }
    let big_endian = number >= 39;
    let mut c = Cursor::new(d);
    let flags = c.u8()?;
    if flags & 0x80 != 0 {
        return None;
    }
    if flags & 0x08 != 0 {
        c.bytes(8)?;
    }
    if flags & 0x01 != 0 {
        c.bytes(4)?;
    }
    c.bytes([1, 2, 4, 6][usize::from((flags >> 4) & 3)])?;
    c.bytes(12)?;
    let uint = |b: &[u8]| {
        let mut v = 0u64;
        if big_endian {
            b.iter().for_each(|&x| v = v << 8 | u64::from(x));
        } else {
            b.iter().rev().for_each(|&x| v = v << 8 | u64::from(x));
        }
        v
    };
    let data = loop {
        let ft = c.u8()?;
        match ft {
            0x07 => continue,
            t if t & 0x80 != 0 => {
                let stream = uint(c.bytes(usize::from(t & 3) + 1)?);
                let ooo = usize::from((t >> 2) & 7);
                let offset = if ooo == 0 { 0 } else { uint(c.bytes(ooo + 1)?) };
                if stream != 1 || offset != 0 {
                    return None;
                }
                break if t & 0x20 != 0 {
                    let len = uint(c.bytes(2)?) as usize;
                    c.bytes(len)?
                } else {
                    c.bytes(c.rest())?
                };
            }
            _ => return None,
        }
    };
    sni_entry(data)
}

/// The `SNI` value of a `CHLO` handshake message (tag, entry count and two bytes of
/// padding, then the entries' tags and end offsets, little-endian, then the values).
fn sni_entry(msg: &[u8]) -> Option<String> {
    let mut c = Cursor::new(msg);
    if c.bytes(4)? != b"CHLO" {
        return None;
    }
    let n = u16::from_le_bytes(c.bytes(2)?.try_into().ok()?).min(MAX_ENTRIES);
    c.bytes(2)?;
    let entries = c.bytes(usize::from(n) * 8)?;
    let values = c.bytes(c.rest())?;
    let mut start = 0usize;
    for e in entries.chunks_exact(8) {
        let end = u32::from_le_bytes(e[4..8].try_into().ok()?) as usize;
        if &e[..4] == b"SNI\0" {
            let name = values.get(start..end)?;
            let name = &name[..name.len().min(255)];
            return (!name.is_empty()).then(|| {
                String::from_utf8_lossy(name)
                    .chars()
                    .map(|ch| {
                        if ch.is_ascii() {
                            ch.to_ascii_lowercase()
                        } else {
                            '\u{fffd}'
                        }
                    })
                    .collect()
            });
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q035: u32 = u32::from_be_bytes(*b"Q035");
    const Q039: u32 = u32::from_be_bytes(*b"Q039");

    /// A client's first packet: flags 0x0d (version, the nonce flag a client sets
    /// without a nonce, 8-byte CID), the version, packet number 1, the 12-byte hash, a
    /// STREAM frame of stream 1 with a 2-byte length, and a CHLO of `entries`.
    fn packet(version: &[u8; 4], big_endian: bool, entries: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut msg = b"CHLO".to_vec();
        msg.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        msg.extend_from_slice(&[0, 0]);
        let mut end = 0u32;
        for (tag, v) in entries {
            end += v.len() as u32;
            msg.extend_from_slice(*tag);
            msg.extend_from_slice(&end.to_le_bytes());
        }
        for (_, v) in entries {
            msg.extend_from_slice(v);
        }
        let mut d = vec![0x0d];
        d.extend_from_slice(&[0x11; 8]);
        d.extend_from_slice(version);
        d.push(1);
        d.extend_from_slice(&[0xaa; 12]);
        d.extend_from_slice(&[0xa0, 1]);
        let len = msg.len() as u16;
        d.extend_from_slice(&if big_endian {
            len.to_be_bytes()
        } else {
            len.to_le_bytes()
        });
        d.extend_from_slice(&msg);
        d.resize(1350, 0);
        d
    }

    #[test]
    fn sni_of_a_client_hello_in_the_clear() {
        let entries: &[(&[u8; 4], &[u8])] = &[
            (b"PAD\0", &[b'-'; 20]),
            (b"SNI\0", b"YT3.ggpht.com"),
            (b"VER\0", b"Q035"),
        ];
        assert_eq!(
            chlo_sni(&packet(b"Q035", false, entries), Q035).as_deref(),
            Some("yt3.ggpht.com")
        );
        // From Q039 the frame's fields are big-endian.
        assert_eq!(
            chlo_sni(&packet(b"Q039", true, entries), Q039).as_deref(),
            Some("yt3.ggpht.com")
        );
        // Read with the other byte order, the length runs past the packet's bytes or
        // cuts the message: no name.
        assert_eq!(chlo_sni(&packet(b"Q035", true, entries), Q035), None);
    }

    proptest::proptest! {
        /// Arbitrary bytes after a client's public header, and arbitrary bytes alone:
        /// no panic, whatever the version.
        #[test]
        fn arbitrary_packets_never_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            v in 30u8..50,
        ) {
            let version = u32::from_be_bytes([b'Q', b'0', b'0' + v / 10, b'0' + v % 10]);
            let mut d = vec![0x0d];
            d.extend_from_slice(&[0x11; 8]);
            d.extend_from_slice(&version.to_be_bytes());
            d.extend_from_slice(&body);
            let _ = chlo_sni(&d, version);
            let _ = chlo_sni(&body, version);
        }

        /// A valid client hello with bytes changed and cut anywhere: no panic.
        #[test]
        fn damaged_hellos_never_panic(
            flips in proptest::collection::vec((0usize..200, proptest::prelude::any::<u8>()), 0..8),
            cut in 0usize..1400,
        ) {
            let entries: &[(&[u8; 4], &[u8])] =
                &[(b"PAD\0", &[b'-'; 20]), (b"SNI\0", b"a.example"), (b"VER\0", b"Q035")];
            let mut d = packet(b"Q035", false, entries);
            for (at, b) in flips {
                d[at] = b;
            }
            d.truncate(cut);
            let _ = chlo_sni(&d, Q035);
        }
    }

    #[test]
    fn no_sni_without_a_client_hello_of_stream_1_at_offset_0() {
        let entries: &[(&[u8; 4], &[u8])] = &[(b"SNI\0", b"a.example")];
        let good = packet(b"Q035", false, entries);
        assert!(chlo_sni(&good, Q035).is_some());
        let mut other_stream = good.clone();
        other_stream[27] = 3;
        assert_eq!(chlo_sni(&other_stream, Q035), None);
        let mut not_chlo = good.clone();
        not_chlo[30..34].copy_from_slice(b"SHLO");
        assert_eq!(chlo_sni(&not_chlo, Q035), None);
        let no_sni = packet(b"Q035", false, &[(b"VER\0", b"Q035")]);
        assert_eq!(chlo_sni(&no_sni, Q035), None);
        // Versions with the IETF-like header (Q046 on) encrypt their handshake.
        assert_eq!(chlo_sni(&good, u32::from_be_bytes(*b"Q046")), None);
        assert_eq!(chlo_sni(&good[..40], Q035), None);
        assert_eq!(chlo_sni(&[], Q035), None);
    }
}
