//! TLS 1.3 handshake messages (RFC 8446 §4) as they appear on the wire before
//! encryption: a ClientHello with SNI (RFC 6066 §3), ALPN (RFC 7301 §3.1),
//! supported_versions, supported_groups, signature_algorithms and an x25519 key_share
//! with random bytes; a ServerHello choosing TLS_AES_128_GCM_SHA256; and the record
//! layer framing (§5.1) used over TCP. Everything after the ServerHello is encrypted in
//! real TLS 1.3, so it is written as application-data records over random bytes.
//!
//! The same ClientHello body is carried in QUIC CRYPTO frames (RFC 9001 §4) with the
//! `quic_transport_parameters` extension (RFC 9000 §18) instead of a record header.

/// Record content types (RFC 8446 §5.1).
pub const CT_CHANGE_CIPHER_SPEC: u8 = 20;
pub const CT_HANDSHAKE: u8 = 22;
pub const CT_APPLICATION_DATA: u8 = 23;
/// Handshake message types (RFC 8446 §4).
pub const HS_CLIENT_HELLO: u8 = 1;
pub const HS_SERVER_HELLO: u8 = 2;
/// Extension numbers (IANA TLS ExtensionType registry).
pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_SUPPORTED_GROUPS: u16 = 10;
pub const EXT_EC_POINT_FORMATS: u16 = 11;
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
pub const EXT_ALPN: u16 = 16;
pub const EXT_EXTENDED_MASTER_SECRET: u16 = 23;
pub const EXT_SESSION_TICKET: u16 = 35;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;
pub const EXT_PSK_KEY_EXCHANGE_MODES: u16 = 45;
/// The padding extension (RFC 7685).
pub const EXT_PADDING: u16 = 21;
pub const EXT_KEY_SHARE: u16 = 51;
pub const EXT_QUIC_TRANSPORT_PARAMETERS: u16 = 57;
pub const EXT_RENEGOTIATION_INFO: u16 = 0xFF01;
/// TLS 1.3 and 1.2 version numbers; 0x0301 is the legacy record version of a first flight.
pub const TLS13: u16 = 0x0304;
pub const TLS12: u16 = 0x0303;
const TLS10: u16 = 0x0301;
/// Named group x25519 (RFC 8446 §4.2.7) and its public key length.
pub const GROUP_X25519: u16 = 0x001D;
const X25519_LEN: usize = 32;
/// TLS_AES_128_GCM_SHA256 (RFC 8446 §B.4), chosen by every ServerHello written here.
pub const TLS_AES_128_GCM_SHA256: u16 = 0x1301;

/// Cipher suites offered over TCP: the three TLS 1.3 suites, then common TLS 1.2 ECDHE ones.
const SUITES_TCP: [u16; 9] = [
    0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
];
/// QUIC carries TLS 1.3 only (RFC 9001 §4.2).
const SUITES_QUIC: [u16; 3] = [0x1301, 0x1302, 0x1303];
const GROUPS: [u16; 3] = [GROUP_X25519, 0x0017, 0x0018];
/// ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256, ecdsa_secp384r1_sha384,
/// rsa_pss_rsae_sha384, rsa_pkcs1_sha384, rsa_pss_rsae_sha512, rsa_pkcs1_sha512.
const SIG_ALGS: [u16; 8] = [
    0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
];

/// The variable parts of a ClientHello.
pub struct ClientHelloSpec<'a> {
    pub random: [u8; 32],
    /// Legacy session id (32 bytes over TCP for middlebox compatibility, empty in QUIC).
    pub session_id: &'a [u8],
    /// server_name (RFC 6066 §3): a DNS host name.
    pub sni: &'a str,
    /// ALPN protocol names in preference order (RFC 7301 §3.1).
    pub alpn: &'a [&'a str],
    /// The x25519 public key (random bytes stand in for a real one).
    pub key_share: [u8; X25519_LEN],
    /// Encoded QUIC transport parameters; `Some` makes this a QUIC ClientHello.
    pub quic_params: Option<&'a [u8]>,
    /// Bytes of a padding extension (RFC 7685) at the end; 0 for none. Stands in for
    /// the size of today's post-quantum key shares (an ML-KEM-768 share is 1,184 bytes),
    /// which push a QUIC ClientHello over more than one Initial packet.
    pub padding: usize,
}

fn u16be(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}

/// Appends a length-prefixed block whose length field is `width` bytes, filled by `f`.
fn with_len(b: &mut Vec<u8>, width: usize, f: impl FnOnce(&mut Vec<u8>)) {
    let at = b.len();
    b.extend(std::iter::repeat_n(0u8, width));
    f(b);
    let len = (b.len() - at - width) as u32;
    let be = len.to_be_bytes();
    b[at..at + width].copy_from_slice(&be[4 - width..]);
}

fn ext(b: &mut Vec<u8>, ty: u16, f: impl FnOnce(&mut Vec<u8>)) {
    u16be(b, ty);
    with_len(b, 2, f);
}

/// Appends a ClientHello handshake message (type, 24-bit length, body; RFC 8446 §4.1.2).
pub fn client_hello(b: &mut Vec<u8>, s: &ClientHelloSpec<'_>) {
    b.push(HS_CLIENT_HELLO);
    with_len(b, 3, |b| {
        u16be(b, TLS12);
        b.extend_from_slice(&s.random);
        b.push(s.session_id.len() as u8);
        b.extend_from_slice(s.session_id);
        let suites: &[u16] = if s.quic_params.is_some() {
            &SUITES_QUIC
        } else {
            &SUITES_TCP
        };
        with_len(b, 2, |b| suites.iter().for_each(|c| u16be(b, *c)));
        b.extend_from_slice(&[1, 0]); // compression methods: null only
        with_len(b, 2, |b| {
            ext(b, EXT_SERVER_NAME, |b| {
                with_len(b, 2, |b| {
                    b.push(0); // name_type host_name
                    with_len(b, 2, |b| b.extend_from_slice(s.sni.as_bytes()));
                })
            });
            if s.quic_params.is_none() {
                ext(b, EXT_EXTENDED_MASTER_SECRET, |_| {});
                ext(b, EXT_RENEGOTIATION_INFO, |b| b.push(0));
            }
            ext(b, EXT_SUPPORTED_GROUPS, |b| {
                with_len(b, 2, |b| GROUPS.iter().for_each(|g| u16be(b, *g)))
            });
            if s.quic_params.is_none() {
                ext(b, EXT_EC_POINT_FORMATS, |b| b.extend_from_slice(&[1, 0]));
                ext(b, EXT_SESSION_TICKET, |_| {});
            }
            ext(b, EXT_ALPN, |b| {
                with_len(b, 2, |b| {
                    for p in s.alpn {
                        b.push(p.len() as u8);
                        b.extend_from_slice(p.as_bytes());
                    }
                })
            });
            ext(b, EXT_SIGNATURE_ALGORITHMS, |b| {
                with_len(b, 2, |b| SIG_ALGS.iter().for_each(|a| u16be(b, *a)))
            });
            ext(b, EXT_KEY_SHARE, |b| {
                with_len(b, 2, |b| {
                    u16be(b, GROUP_X25519);
                    with_len(b, 2, |b| b.extend_from_slice(&s.key_share));
                })
            });
            ext(b, EXT_PSK_KEY_EXCHANGE_MODES, |b| {
                b.extend_from_slice(&[1, 1])
            });
            ext(b, EXT_SUPPORTED_VERSIONS, |b| {
                with_len(b, 1, |b| {
                    u16be(b, TLS13);
                    if s.quic_params.is_none() {
                        u16be(b, TLS12);
                    }
                })
            });
            if let Some(tp) = s.quic_params {
                ext(b, EXT_QUIC_TRANSPORT_PARAMETERS, |b| {
                    b.extend_from_slice(tp)
                });
            }
            if s.padding > 0 {
                ext(b, EXT_PADDING, |b| b.resize(b.len() + s.padding, 0));
            }
        });
    });
}

/// Appends a ServerHello selecting TLS 1.3, TLS_AES_128_GCM_SHA256 and x25519
/// (RFC 8446 §4.1.3); `session_id` echoes the client's legacy session id.
pub fn server_hello(b: &mut Vec<u8>, random: &[u8; 32], session_id: &[u8], key: &[u8; 32]) {
    b.push(HS_SERVER_HELLO);
    with_len(b, 3, |b| {
        u16be(b, TLS12);
        b.extend_from_slice(random);
        b.push(session_id.len() as u8);
        b.extend_from_slice(session_id);
        u16be(b, TLS_AES_128_GCM_SHA256);
        b.push(0);
        with_len(b, 2, |b| {
            ext(b, EXT_SUPPORTED_VERSIONS, |b| u16be(b, TLS13));
            ext(b, EXT_KEY_SHARE, |b| {
                u16be(b, GROUP_X25519);
                with_len(b, 2, |b| b.extend_from_slice(key));
            });
        });
    });
}

/// Appends a TLS record (RFC 8446 §5.1) of `content_type` whose fragment `f` writes.
/// The first ClientHello uses the legacy record version 0x0301, everything else 0x0303.
pub fn record(b: &mut Vec<u8>, content_type: u8, first_flight: bool, f: impl FnOnce(&mut Vec<u8>)) {
    b.push(content_type);
    u16be(b, if first_flight { TLS10 } else { TLS12 });
    with_len(b, 2, f);
}

/// Appends an application-data record whose `len`-byte fragment is taken from `random`
/// (cycled): what encrypted handshake messages and data look like on the wire.
pub fn opaque_record(b: &mut Vec<u8>, len: usize, random: &[u8]) {
    record(b, CT_APPLICATION_DATA, false, |b| {
        let mut left = len;
        let mut p = 0usize;
        while left > 0 && !random.is_empty() {
            let n = left.min(random.len() - p);
            b.extend_from_slice(&random[p..p + n]);
            left -= n;
            p = (p + n) % random.len();
        }
    });
}

/// The server's first flight over TCP: ServerHello, a compatibility ChangeCipherSpec
/// (RFC 8446 §D.4) and `encrypted` bytes of application-data records standing in for
/// EncryptedExtensions, Certificate, CertificateVerify and Finished.
pub fn server_flight(
    b: &mut Vec<u8>,
    random: &[u8; 32],
    session_id: &[u8],
    key: &[u8; 32],
    encrypted: usize,
    pool: &[u8],
) {
    record(b, CT_HANDSHAKE, false, |b| {
        server_hello(b, random, session_id, key)
    });
    change_cipher_spec(b);
    let mut left = encrypted;
    let mut p = 0usize;
    while left > 5 {
        let n = (left - 5).min(16_384 + 17);
        opaque_record(b, n, &pool[p % pool.len().max(1)..]);
        p += n;
        left -= n + 5;
    }
}

/// Appends a ChangeCipherSpec record (one byte, value 1).
pub fn change_cipher_spec(b: &mut Vec<u8>) {
    record(b, CT_CHANGE_CIPHER_SPEC, false, |b| b.push(1));
}

/// The client's second flight over TCP: ChangeCipherSpec and an encrypted Finished
/// (32-byte verify_data + type byte + 16-byte tag = 53 bytes of record body).
pub fn client_finished(b: &mut Vec<u8>, pool: &[u8]) {
    change_cipher_spec(b);
    opaque_record(b, 53, pool);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the extensions of a ClientHello body and returns the SNI and ALPN names.
    fn sni_alpn(ch: &[u8]) -> (String, Vec<String>) {
        assert_eq!(ch[0], HS_CLIENT_HELLO);
        let len = u32::from_be_bytes([0, ch[1], ch[2], ch[3]]) as usize;
        assert_eq!(len, ch.len() - 4);
        let mut p = 4 + 2 + 32;
        p += 1 + ch[p] as usize;
        p += 2 + u16::from_be_bytes([ch[p], ch[p + 1]]) as usize;
        p += 1 + ch[p] as usize;
        let end = p + 2 + u16::from_be_bytes([ch[p], ch[p + 1]]) as usize;
        assert_eq!(end, ch.len());
        p += 2;
        let (mut sni, mut alpn) = (String::new(), Vec::new());
        while p < end {
            let ty = u16::from_be_bytes([ch[p], ch[p + 1]]);
            let l = u16::from_be_bytes([ch[p + 2], ch[p + 3]]) as usize;
            let d = &ch[p + 4..p + 4 + l];
            if ty == EXT_SERVER_NAME {
                assert_eq!(d[2], 0);
                let n = u16::from_be_bytes([d[3], d[4]]) as usize;
                sni = String::from_utf8(d[5..5 + n].to_vec()).unwrap();
            }
            if ty == EXT_ALPN {
                let mut q = 2;
                while q < d.len() {
                    let n = d[q] as usize;
                    alpn.push(String::from_utf8(d[q + 1..q + 1 + n].to_vec()).unwrap());
                    q += 1 + n;
                }
            }
            p += 4 + l;
        }
        assert_eq!(p, end);
        (sni, alpn)
    }

    #[test]
    fn client_hello_lengths_and_sni() {
        let mut b = Vec::new();
        let sid = [7u8; 32];
        client_hello(
            &mut b,
            &ClientHelloSpec {
                random: [1; 32],
                session_id: &sid,
                sni: "video.cdn.example",
                alpn: &["h2", "http/1.1"],
                key_share: [2; 32],
                quic_params: None,
                padding: 0,
            },
        );
        let (sni, alpn) = sni_alpn(&b);
        assert_eq!(sni, "video.cdn.example");
        assert_eq!(alpn, ["h2", "http/1.1"]);
    }

    #[test]
    fn server_flight_records_tile() {
        let pool = [9u8; 1000];
        let mut b = Vec::new();
        server_flight(&mut b, &[3; 32], &[4; 32], &[5; 32], 3000, &pool);
        let mut p = 0;
        let mut types = Vec::new();
        while p < b.len() {
            types.push(b[p]);
            p += 5 + u16::from_be_bytes([b[p + 3], b[p + 4]]) as usize;
        }
        assert_eq!(p, b.len());
        assert_eq!(types, [22, 20, 23]);
        // ServerHello record: 5 + 4 + 2 + 32 + 33 + 2 + 1 + 2 + 6 + 40 = 127 bytes.
        assert_eq!(u16::from_be_bytes([b[3], b[4]]), 122);
        assert_eq!(b.len(), 127 + 6 + 3000);
    }
}
