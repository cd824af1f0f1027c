//! Reading a ClientHello or ServerHello handshake message (RFC 8446 section 4.1.2 and
//! 4.1.3, RFC 5246 section 7.4.1) with `tls-parser`: the fixed fields by the crate's
//! hello parsers, the extension block framed here (type, 16-bit length) and only the
//! extensions this module reports (server_name, ALPN, supported_versions) handed to the
//! crate's extension parser, so that an extension the crate rejects, or does not know,
//! costs nothing and spoils nothing else.

use tls_parser::{
    parse_tls_client_hello_extension, parse_tls_handshake_client_hello,
    parse_tls_handshake_server_hello, parse_tls_server_hello_extension, SNIType, TlsExtension,
};

use super::{ClientHello, HelloError, ServerHello};

/// Handshake message types (RFC 8446 section 4).
pub(crate) const HS_CLIENT_HELLO: u8 = 1;
pub(crate) const HS_SERVER_HELLO: u8 = 2;
/// Length of a handshake message header: type (1) and 24-bit length (RFC 8446 section 4).
pub(crate) const HS_HEADER_LEN: usize = 4;

/// Extension code points (IANA "TLS ExtensionType Values").
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// Most ALPN protocol names and supported versions kept from one hello (a ClientHello
/// lists a handful; a hostile one could list thousands).
pub(crate) const MAX_LIST: usize = 16;
/// Longest ALPN protocol name kept (RFC 7301 allows 255 bytes; real ones are short).
const MAX_ALPN_NAME: usize = 32;
/// Longest server name kept (a DNS name is at most 253 characters).
const MAX_NAME: usize = 255;

/// The random of a HelloRetryRequest: SHA-256 of "HelloRetryRequest" (RFC 8446
/// section 4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// The 24-bit length of the handshake message whose header starts `msg`, when the
/// header is there.
pub(crate) fn message_len(msg: &[u8]) -> Option<usize> {
    match msg {
        [_, a, b, c, ..] => Some(usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c)),
        _ => None,
    }
}

/// The body of the whole handshake message at the start of `msg` (header included in
/// `msg`), when it is all there and of type `want`.
fn body(msg: &[u8], want: u8) -> Result<&[u8], HelloError> {
    let len = message_len(msg).ok_or(HelloError::Truncated)?;
    if msg[0] != want {
        return Err(HelloError::NotHello(msg[0]));
    }
    msg.get(HS_HEADER_LEN..HS_HEADER_LEN + len)
        .ok_or(HelloError::Truncated)
}

/// Each extension of an extension block as (type, whole extension with its 4-byte
/// header), and whether the block's framing held to its end.
fn extensions(mut block: &[u8], mut each: impl FnMut(u16, &[u8])) -> bool {
    while !block.is_empty() {
        let Some(&[t0, t1, l0, l1]) = block.get(..4) else {
            return false;
        };
        let end = 4 + usize::from(u16::from_be_bytes([l0, l1]));
        let Some(ext) = block.get(..end) else {
            return false;
        };
        each(u16::from_be_bytes([t0, t1]), ext);
        block = &block[end..];
    }
    true
}

/// A host name as reported: ASCII lower-cased, other bytes replaced (U+FFFD), at most
/// [`MAX_NAME`] bytes.
fn host_name(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_NAME)];
    String::from_utf8_lossy(raw).to_ascii_lowercase()
}

fn protocol_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(MAX_ALPN_NAME)]).into_owned()
}

/// Whether a 16-bit value is a GREASE value (RFC 8701 section 2): 0x?A?A with both bytes
/// equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Reads a whole ClientHello handshake message, header included (RFC 8446 section
/// 4.1.2). See [`ClientHello::parse`].
pub(crate) fn client_hello(msg: &[u8]) -> Result<ClientHello, HelloError> {
    let body = body(msg, HS_CLIENT_HELLO)?;
    let (_, ch) = parse_tls_handshake_client_hello(body).map_err(|_| HelloError::Malformed)?;
    let mut hello = ClientHello {
        legacy_version: ch.version.0,
        sni: None,
        alpn: Vec::new(),
        supported_versions: Vec::new(),
        cipher_suites: u16::try_from(ch.ciphers.len()).unwrap_or(u16::MAX),
        extensions: 0,
        bad_extensions: 0,
    };
    let block = ch.ext.unwrap_or(&[]);
    let framed = extensions(block, |t, ext| {
        hello.extensions = hello.extensions.saturating_add(1);
        if !matches!(t, EXT_SERVER_NAME | EXT_ALPN | EXT_SUPPORTED_VERSIONS) {
            return;
        }
        match parse_tls_client_hello_extension(ext) {
            Ok((_, TlsExtension::SNI(names))) => {
                if hello.sni.is_none() {
                    hello.sni = names
                        .iter()
                        .find(|(t, _)| *t == SNIType::HostName)
                        .map(|(_, n)| host_name(n));
                }
            }
            Ok((_, TlsExtension::ALPN(protocols))) => {
                for p in protocols {
                    if hello.alpn.len() < MAX_LIST {
                        hello.alpn.push(protocol_name(p));
                    }
                }
            }
            Ok((_, TlsExtension::SupportedVersions(versions))) => {
                for v in versions {
                    if hello.supported_versions.len() < MAX_LIST {
                        hello.supported_versions.push(v.0);
                    }
                }
            }
            _ => hello.bad_extensions = hello.bad_extensions.saturating_add(1),
        }
    });
    if !framed {
        hello.bad_extensions = hello.bad_extensions.saturating_add(1);
    }
    Ok(hello)
}

/// Reads a whole ServerHello handshake message, header included (RFC 8446 section
/// 4.1.3, RFC 5246 section 7.4.1.3). See [`ServerHello::parse`].
pub(crate) fn server_hello(msg: &[u8]) -> Result<ServerHello, HelloError> {
    let body = body(msg, HS_SERVER_HELLO)?;
    let (_, sh) = parse_tls_handshake_server_hello(body).map_err(|_| HelloError::Malformed)?;
    let mut hello = ServerHello {
        legacy_version: sh.version.0,
        selected_version: None,
        alpn: None,
        cipher_suite: sh.cipher.0,
        hello_retry: sh.random == HRR_RANDOM,
        bad_extensions: 0,
    };
    let block = sh.ext.unwrap_or(&[]);
    let framed = extensions(block, |t, ext| {
        if !matches!(t, EXT_ALPN | EXT_SUPPORTED_VERSIONS) {
            return;
        }
        match parse_tls_server_hello_extension(ext) {
            Ok((_, TlsExtension::ALPN(protocols))) => {
                hello.alpn = protocols.first().map(|p| protocol_name(p));
            }
            Ok((_, TlsExtension::SupportedVersions(v))) if v.len() == 1 => {
                hello.selected_version = Some(v[0].0);
            }
            _ => hello.bad_extensions = hello.bad_extensions.saturating_add(1),
        }
    });
    if !framed {
        hello.bad_extensions = hello.bad_extensions.saturating_add(1);
    }
    Ok(hello)
}
