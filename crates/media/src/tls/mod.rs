//! TLS over TCP (RFC 8446, RFC 5246): the ClientHello and ServerHello of a connection
//! (server name, ALPN, versions) and every record header after them, per direction.
//!
//! # What is here
//!
//! * [`TlsFlow`]: the TLS state of one TCP connection. It is fed each direction's bytes
//!   in order ([`TlsFlow::on_stream`]), told of bytes that will never come
//!   ([`TlsFlow::on_gap`]) and of the end ([`TlsFlow::finish`]). Every record header it
//!   reads is handed to the caller as a [`TlsRecord`] (direction, time, content type,
//!   length), encrypted records included: the sizes and times of application data
//!   records are what segment inference works from.
//! * [`ClientHello`] and [`ServerHello`]: what the hellos say. [`ClientHello::parse`] is
//!   also what [`crate::quic`] reads the ClientHello of a QUIC Initial with.
//! * [`DirStats`] per direction (records by type, application data records and bytes,
//!   a histogram of their sizes) and [`TlsStats`], what was read and what was not, by
//!   kind.
//!
//! # Records
//!
//! A record is a 5-byte header (content type, legacy version, 16-bit length) and that
//! many bytes (RFC 8446 section 5.1, RFC 5246 section 6.2). A header is accepted when its
//! content type is one of change_cipher_spec (20), alert (21), handshake (22),
//! application_data (23) or heartbeat (24), its version is 3.x with x at most 4 (SSL 3.0
//! to TLS 1.3's 0x0303; 0x0304 is never sent but tolerated) and its length at most
//! 2^14 + 2048 (the largest TLSCiphertext, RFC 5246 section 6.2.3). The record's event has
//! the time of the call that completed its header.
//!
//! # Reading the hellos, and no more
//!
//! Each direction collects the bodies of its handshake records (a handshake message
//! may span records, and a record may span segments) until its hello is whole: the
//! ClientHello from the client, the ServerHello from the server. The message is
//! reassembled into a per-direction buffer of at most [`MAX_HELLO`] bytes (64 KiB: a
//! ClientHello with a post-quantum key share is about 1.8 KB, with many PSK identities
//! still a few KB), parsed, and the buffer is released. From then on the direction
//! reads only record headers: the contents of later records (certificates, key
//! exchange, encrypted data) are skipped without a look.
//!
//! * A ServerHello that is a HelloRetryRequest (RFC 8446 section 4.1.4) sets both
//!   directions reading again, for the second ClientHello and the real ServerHello; the
//!   first ClientHello's fields are kept, both are counted ([`TlsFlow::client_hellos`]).
//! * The chosen version is the ServerHello's supported_versions extension when present
//!   (TLS 1.3), else its legacy version ([`ServerHello::version`]).
//! * The chosen ALPN protocol is in the ServerHello only up to TLS 1.2 (RFC 7301 section
//!   3.1). In TLS 1.3 the server sends it in EncryptedExtensions, which is encrypted:
//!   [`ServerHello::alpn`] is then `None` (RFC 8446 section 4.3.1), and no passive
//!   reader can know it.
//! * A direction whose first handshake message is not its hello, or that sends
//!   application data before it, or whose hello does not parse,
//!   goes on reading record headers only (counted by kind).
//!
//! # Not TLS
//!
//! A connection is taken for TLS when the client's first record header is a handshake
//! record header as above and its first handshake message byte is ClientHello (1) (or,
//! for a connection picked up mid-stream, when a direction resynchronises, below). When
//! either direction's first bytes are not a record header, or the client's first record
//! is not a handshake record starting a ClientHello, the flow gives up at once
//! ([`TlsFlow::is_tls`] is `Some(false)`, [`TlsFlow::wants_bytes`] false): a non-TLS flow
//! costs the inspection of at most a few bytes. SSL 2.0's ClientHello format (first byte
//! with its top bit set) is not TLS here.
//!
//! # Gaps
//!
//! [`TlsFlow::on_gap`] is given the number of bytes lost. A gap inside a record body
//! (the header read, the lost bytes no more than what was left of the body) keeps the
//! framing ([`TlsStats::gaps_in_record`]); a hello being collected is lost with it
//! ([`TlsStats::hello_lost`]). A gap across a record header loses the framing: the
//! direction then reads nothing until a call whose bytes start with a plausible record
//! header of type 21, 22 or 23 and version 3.1 to 3.3 ([`TlsStats::resyncs`]).
//! Senders usually write a record at a time, so a segment often starts with one; a
//! direction whose segments never again start at a record boundary stays silent. A
//! connection picked up mid-stream should be reported as a gap before its first bytes.
//!
//! # Memory and cost
//!
//! A `TlsFlow` is 704 bytes inline (its counters, size histograms and the two hellos'
//! fields included; box it where flows are many) and holds
//! one buffer while a hello is being collected (at most [`MAX_HELLO`] bytes per
//! direction), none after. After the hellos, a record costs a header read and a few
//! counter updates per record, whatever its length. The media inspector keeps one for
//! a TLS flow's whole life, to count its application_data records.
//!
//! # The parsing crate: tls-parser
//!
//! Hellos are read with `tls-parser` (0.12, rusticata; default features off, `no_std`
//! with `alloc`): its ClientHello and ServerHello parsers for the fixed fields, and its
//! extension parser for server_name (RFC 6066 section 3), ALPN (RFC 7301 section 3.1)
//! and supported_versions (RFC 8446 section 4.2.1). The extension block is framed here
//! and only those three are given to the crate, so an extension it rejects does not
//! lose the others (it is counted in [`TlsStats::bad_extensions`]). Record framing is
//! done here: it is a 5-byte header, and the crate's record parser wants the whole
//! record in one slice.
//!
//! # Panics
//!
//! None: every read is a checked slice access or goes through the crate's parsers, which
//! return errors on short or malformed input; property tests feed arbitrary bytes.

mod flow;
mod hello;
#[cfg(test)]
mod tests;

pub use flow::TlsFlow;
pub use hello::is_grease;
pub use streamscope_flow::Dir;

/// Largest handshake message (hello) reassembled, in bytes: 64 KiB.
pub const MAX_HELLO: usize = 64 * 1024;

/// Largest record length accepted in a header: 2^14 + 2048 (RFC 5246 section 6.2.3).
pub const MAX_RECORD_LEN: u16 = 16_384 + 2_048;

/// Record content types (RFC 8446 section 5.1, RFC 6520 section 3).
pub mod content_type {
    /// change_cipher_spec.
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    /// alert.
    pub const ALERT: u8 = 21;
    /// handshake.
    pub const HANDSHAKE: u8 = 22;
    /// application_data (in TLS 1.3 also every encrypted handshake message and alert).
    pub const APPLICATION_DATA: u8 = 23;
    /// heartbeat.
    pub const HEARTBEAT: u8 = 24;
}

/// One record header as read: the event given to [`TlsFlow::on_stream`]'s callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsRecord {
    /// Which way it went.
    pub dir: Dir,
    /// Time of the call that completed its header.
    pub ts_ns: i64,
    /// Its content type (see [`content_type`]).
    pub content_type: u8,
    /// Its length field: the bytes after the header.
    pub length: u16,
}

/// What a ClientHello says (RFC 8446 section 4.1.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// legacy_version (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// The first host_name of the server_name extension (RFC 6066 section 3), ASCII
    /// lower-cased (other bytes replaced by U+FFFD), at most 255 bytes.
    pub sni: Option<String>,
    /// The protocols offered in the ALPN extension (RFC 7301), in order, at most 16 of at
    /// most 32 bytes each.
    pub alpn: Vec<String>,
    /// The versions offered in the supported_versions extension (RFC 8446 section
    /// 4.2.1), in order, GREASE values included ([`is_grease`]), at most 16.
    pub supported_versions: Vec<u16>,
    /// Number of cipher suites offered.
    pub cipher_suites: u16,
    /// Number of extensions.
    pub extensions: u16,
    /// Extensions among server_name, ALPN and supported_versions that did not parse, plus
    /// one if the extension block's framing did not hold.
    pub bad_extensions: u16,
}

impl ClientHello {
    /// Reads a whole ClientHello handshake message: its 4-byte handshake header (type 1,
    /// 24-bit length) and body, as carried in TLS handshake records or QUIC CRYPTO frames
    /// (RFC 9001 section 4). Bytes after the message are ignored.
    pub fn parse(msg: &[u8]) -> Result<ClientHello, HelloError> {
        hello::client_hello(msg)
    }

    /// The highest non-GREASE version offered: the largest of supported_versions, else
    /// legacy_version.
    pub fn max_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            .filter(|&v| !is_grease(v))
            .max()
            .unwrap_or(self.legacy_version)
    }
}

/// What a ServerHello says (RFC 8446 section 4.1.3, RFC 5246 section 7.4.1.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// legacy_version (the version itself up to TLS 1.2; 0x0303 in TLS 1.3).
    pub legacy_version: u16,
    /// The supported_versions extension's selected_version (TLS 1.3).
    pub selected_version: Option<u16>,
    /// The protocol chosen in the ALPN extension. Only up to TLS 1.2: in TLS 1.3 it is in
    /// the encrypted EncryptedExtensions message and this is `None`.
    pub alpn: Option<String>,
    /// The chosen cipher suite.
    pub cipher_suite: u16,
    /// It is a HelloRetryRequest (its random is the special value of RFC 8446 section
    /// 4.1.3).
    pub hello_retry: bool,
    /// ALPN or supported_versions extensions that did not parse, plus one if the
    /// extension block's framing did not hold.
    pub bad_extensions: u16,
}

impl ServerHello {
    /// Reads a whole ServerHello handshake message, header included (type 2).
    pub fn parse(msg: &[u8]) -> Result<ServerHello, HelloError> {
        hello::server_hello(msg)
    }

    /// The negotiated version: selected_version when present, else legacy_version.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// Why a hello message was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloError {
    /// Fewer bytes than its header or its header's length.
    Truncated,
    /// A handshake message of another type (the byte given).
    NotHello(u8),
    /// Its fixed fields did not parse.
    Malformed,
}

impl std::fmt::Display for HelloError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelloError::Truncated => f.write_str("handshake message cut short"),
            HelloError::NotHello(t) => write!(f, "handshake message of type {t}, not a hello"),
            HelloError::Malformed => f.write_str("malformed hello"),
        }
    }
}

impl std::error::Error for HelloError {}

/// A version's name: `SSL 3.0`, `TLS 1.0` to `TLS 1.3`, `GREASE`, else `0x....`.
pub fn version_name(v: u16) -> std::borrow::Cow<'static, str> {
    let name = match v {
        0x0300 => "SSL 3.0",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        v if is_grease(v) => "GREASE",
        v => return format!("0x{v:04x}").into(),
    };
    name.into()
}

/// Number of buckets of [`SizeHistogram`].
pub const SIZE_BUCKETS: usize = 10;

/// Record lengths by power of two: bucket 0 holds lengths below 64, bucket i (1 to 8)
/// lengths in [2^(5+i), 2^(6+i)), bucket 9 lengths of 16,384 and more (full-size records,
/// the bulk of a media download).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizeHistogram(pub [u64; SIZE_BUCKETS]);

impl SizeHistogram {
    /// Counts one length.
    #[inline]
    pub fn add(&mut self, len: u16) {
        let bits = 16 - len.leading_zeros() as usize; // 0 for 0, 7 for 64..=127
        let i = bits.saturating_sub(6).min(SIZE_BUCKETS - 1);
        self.0[i] += 1;
    }

    /// The smallest length of bucket `i`.
    pub fn lower_bound(i: usize) -> u32 {
        if i == 0 {
            0
        } else {
            1 << (5 + i.min(SIZE_BUCKETS - 1))
        }
    }
}

/// Counts of one direction's records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Record headers read.
    pub records: u64,
    /// Bytes of those records, headers included.
    pub record_bytes: u64,
    /// Handshake records (22).
    pub handshake: u64,
    /// change_cipher_spec records (20).
    pub change_cipher_spec: u64,
    /// Alert records (21; in TLS 1.3 after the hellos alerts are application data).
    pub alerts: u64,
    /// application_data records (23). In TLS 1.3 the first one or two of each direction
    /// carry the encrypted handshake.
    pub app_data: u64,
    /// Their length fields added up.
    pub app_data_bytes: u64,
    /// The longest application_data record.
    pub app_data_max: u16,
    /// application_data record lengths.
    pub app_data_sizes: SizeHistogram,
    /// application_data records read whole: header and body in the in-order stream,
    /// none of it lost or cut off by the end of the flow (what a dissector that
    /// reassembles records shows).
    pub app_data_whole: u64,
    /// Their length fields added up.
    pub app_data_whole_bytes: u64,
}

counters! {
    /// What the TLS reader read and did not, by kind (add flows with `merge`).
    pub struct TlsStats {
        /// Record headers read.
        pub records: u64,
        /// ClientHellos read.
        pub client_hellos: u64,
        /// ServerHellos read (HelloRetryRequests included).
        pub server_hellos: u64,
        /// ServerHellos that were HelloRetryRequests.
        pub hello_retry_requests: u64,
        /// Flows given up as not TLS.
        pub not_tls: u64,
        /// Record headers out of bounds after a direction had been read as TLS: its
        /// framing is lost.
        pub bad_record_header: u64,
        /// Gaps reported.
        pub gaps: u64,
        /// Gaps inside a record body: framing kept.
        pub gaps_in_record: u64,
        /// Gaps that lost a direction's framing.
        pub gaps_lost_framing: u64,
        /// Directions that found a record boundary again after losing the framing.
        pub resyncs: u64,
        /// Hellos being collected when a gap came.
        pub hello_lost: u64,
        /// Hellos announcing more than `MAX_HELLO` bytes.
        pub hello_too_large: u64,
        /// Hellos still incomplete when the flow ended.
        pub hello_incomplete: u64,
        /// Hellos whose fixed fields did not parse.
        pub bad_hello: u64,
        /// Directions whose first handshake message was not their hello.
        pub unexpected_handshake: u64,
        /// Directions that sent application data before their hello.
        pub no_hello: u64,
        /// Extensions that did not parse (see `ClientHello::bad_extensions`).
        pub bad_extensions: u64,
        /// Directions that ended inside a record.
        pub truncated_record: u64,
    }
}
