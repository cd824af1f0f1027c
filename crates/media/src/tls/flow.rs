//! [`TlsFlow`]: record framing per direction, hello reassembly, gaps.

use super::content_type::{ALERT, APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE, HEARTBEAT};
use super::hello::{message_len, HS_CLIENT_HELLO, HS_HEADER_LEN, HS_SERVER_HELLO};
use super::{
    ClientHello, Dir, DirStats, HelloError, ServerHello, TlsRecord, TlsStats, MAX_HELLO,
    MAX_RECORD_LEN,
};

/// Length of a record header (RFC 8446 section 5.1).
const RECORD_HEADER_LEN: usize = 5;

/// What a direction is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading records and collecting handshake bytes until the hello is whole.
    Hello,
    /// Reading record headers only.
    Records,
    /// Framing lost: waiting for a call that starts with a record header.
    Lost,
    /// Not TLS: reading nothing.
    Off,
}

/// Whether the flow is TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Unknown,
    Tls,
    NotTls,
}

/// One direction's framing state.
#[derive(Debug)]
struct Side {
    phase: Phase,
    /// A record header being completed.
    header: [u8; RECORD_HEADER_LEN],
    header_len: u8,
    /// Bytes of the current record's body still to come, and its type.
    body_left: u16,
    body_type: u8,
    /// The current record's length, and whether none of its body was lost so far.
    body_len: u16,
    body_whole: bool,
    /// No byte read yet.
    fresh: bool,
    /// The handshake message being collected (Hello phase only).
    hello: Vec<u8>,
    stats: DirStats,
}

impl Side {
    fn new() -> Side {
        Side {
            phase: Phase::Hello,
            header: [0; RECORD_HEADER_LEN],
            header_len: 0,
            body_left: 0,
            body_type: 0,
            body_len: 0,
            body_whole: false,
            fresh: true,
            hello: Vec::new(),
            stats: DirStats::default(),
        }
    }

    /// Stops collecting a hello and releases its buffer.
    fn drop_hello(&mut self) {
        self.hello = Vec::new();
        if self.phase == Phase::Hello {
            self.phase = Phase::Records;
        }
    }

    fn lose_framing(&mut self) {
        self.hello = Vec::new();
        self.header_len = 0;
        self.body_left = 0;
        self.phase = Phase::Lost;
    }
}

/// Whether the bytes present of a record header (1 to 5 of them) can start a record.
/// `first_client`: the client's first record, which must be a handshake record.
fn header_ok(h: &[u8], first_client: bool) -> bool {
    let mut ok = match h.first() {
        Some(&t) if first_client => t == HANDSHAKE,
        Some(t) => (CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(t),
        None => true,
    };
    if let Some(&major) = h.get(1) {
        ok &= major == 3;
    }
    if let Some(&minor) = h.get(2) {
        ok &= minor <= 4;
    }
    if let [_, _, _, l0, l1] = *h {
        ok &= u16::from_be_bytes([l0, l1]) <= MAX_RECORD_LEN;
    }
    ok
}

/// Whether `bytes` start with a record header plausible enough to resynchronise on:
/// alert, handshake or application_data, version 3.1 to 3.3, a length from 1 to the
/// maximum.
fn resync_point(bytes: &[u8]) -> bool {
    match *bytes {
        [t, 3, minor, l0, l1, ..] => {
            let len = u16::from_be_bytes([l0, l1]);
            (ALERT..=APPLICATION_DATA).contains(&t)
                && (1..=3).contains(&minor)
                && (1..=MAX_RECORD_LEN).contains(&len)
        }
        _ => false,
    }
}

/// The TLS state of one TCP connection: see the [module documentation](super).
#[derive(Debug)]
pub struct TlsFlow {
    sides: [Side; 2],
    verdict: Verdict,
    client_hello: Option<ClientHello>,
    server_hello: Option<ServerHello>,
    client_hello_ts_ns: Option<i64>,
    server_hello_ts_ns: Option<i64>,
    client_hellos: u16,
    stats: TlsStats,
}

impl Default for TlsFlow {
    fn default() -> Self {
        TlsFlow::new()
    }
}

impl TlsFlow {
    /// A connection whose first bytes in each direction are still to come.
    pub fn new() -> TlsFlow {
        TlsFlow {
            sides: [Side::new(), Side::new()],
            verdict: Verdict::Unknown,
            client_hello: None,
            server_hello: None,
            client_hello_ts_ns: None,
            server_hello_ts_ns: None,
            client_hellos: 0,
            stats: TlsStats::default(),
        }
    }

    /// `Some(true)` once the connection reads as TLS, `Some(false)` once it was given up
    /// as not TLS, `None` before either.
    pub fn is_tls(&self) -> Option<bool> {
        match self.verdict {
            Verdict::Unknown => None,
            Verdict::Tls => Some(true),
            Verdict::NotTls => Some(false),
        }
    }

    /// Whether more bytes are of any use: false once the flow is not TLS.
    pub fn wants_bytes(&self) -> bool {
        self.verdict != Verdict::NotTls
    }

    /// The client's (first) ClientHello, once read.
    pub fn client_hello(&self) -> Option<&ClientHello> {
        self.client_hello.as_ref()
    }

    /// The server's ServerHello (the last one, after a HelloRetryRequest), once read.
    pub fn server_hello(&self) -> Option<&ServerHello> {
        self.server_hello.as_ref()
    }

    /// Time of the call that completed the first ClientHello.
    pub fn client_hello_ts_ns(&self) -> Option<i64> {
        self.client_hello_ts_ns
    }

    /// Time of the call that completed the (last) ServerHello.
    pub fn server_hello_ts_ns(&self) -> Option<i64> {
        self.server_hello_ts_ns
    }

    /// ClientHellos read: 2 after a HelloRetryRequest.
    pub fn client_hellos(&self) -> u16 {
        self.client_hellos
    }

    /// One direction's record counts.
    pub fn dir_stats(&self, dir: Dir) -> &DirStats {
        &self.sides[dir.index()].stats
    }

    /// What was read and not, by kind.
    pub fn stats(&self) -> &TlsStats {
        &self.stats
    }

    /// The next bytes of one direction, in order. `on_record` hears every record header
    /// read (see [`TlsRecord`]).
    pub fn on_stream(
        &mut self,
        dir: Dir,
        ts_ns: i64,
        bytes: &[u8],
        on_record: &mut impl FnMut(TlsRecord),
    ) {
        let i = dir.index();
        match self.sides[i].phase {
            Phase::Off => return,
            Phase::Lost => {
                if !resync_point(bytes) {
                    return;
                }
                let side = &mut self.sides[i];
                side.phase = Phase::Records;
                side.fresh = false;
                self.stats.resyncs += 1;
                if self.verdict == Verdict::Unknown {
                    self.verdict = Verdict::Tls;
                }
            }
            Phase::Hello | Phase::Records => {}
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let side = &mut self.sides[i];
            if side.body_left > 0 {
                let n = usize::from(side.body_left).min(rest.len());
                let (chunk, after) = rest.split_at(n);
                rest = after;
                side.body_left -= n as u16;
                let done = side.body_left == 0;
                if side.phase == Phase::Hello && side.body_type == HANDSHAKE {
                    self.hello_bytes(dir, ts_ns, chunk);
                }
                if done {
                    self.record_done(i);
                }
                continue;
            }
            // A record header, perhaps completing one begun in an earlier call.
            let have = usize::from(side.header_len);
            let n = (RECORD_HEADER_LEN - have).min(rest.len());
            side.header[have..have + n].copy_from_slice(&rest[..n]);
            side.header_len += n as u8;
            rest = &rest[n..];
            let first_client = side.fresh && dir == Dir::Up;
            if !header_ok(&side.header[..usize::from(side.header_len)], first_client) {
                self.bad_header(dir);
                return;
            }
            if usize::from(side.header_len) < RECORD_HEADER_LEN {
                return;
            }
            side.header_len = 0;
            side.fresh = false;
            let h = side.header;
            let record = TlsRecord {
                dir,
                ts_ns,
                content_type: h[0],
                length: u16::from_be_bytes([h[3], h[4]]),
            };
            side.body_type = record.content_type;
            side.body_left = record.length;
            side.body_len = record.length;
            side.body_whole = true;
            self.count(record);
            on_record(record);
            if record.length == 0 {
                self.record_done(i);
            }
        }
    }

    /// `missing` bytes of one direction will never come (lost or not captured) before
    /// the next [`TlsFlow::on_stream`] call.
    pub fn on_gap(&mut self, dir: Dir, ts_ns: i64, missing: u64) {
        let _ = ts_ns;
        let side = &mut self.sides[dir.index()];
        if side.phase == Phase::Off || missing == 0 {
            return;
        }
        self.stats.gaps += 1;
        if side.phase == Phase::Hello && !side.fresh {
            self.stats.hello_lost += 1;
            side.drop_hello();
        }
        if side.phase == Phase::Lost {
            return;
        }
        if side.header_len == 0 && missing <= u64::from(side.body_left) {
            side.body_left -= missing as u16;
            side.body_whole = false;
            self.stats.gaps_in_record += 1;
        } else {
            if side.fresh {
                // Picked up mid-stream: not a loss of framing once had.
                side.fresh = false;
            } else {
                self.stats.gaps_lost_framing += 1;
            }
            side.lose_framing();
        }
    }

    /// The connection ended: partial records and hellos are counted, buffers released.
    pub fn finish(&mut self, end_ts_ns: i64) {
        let _ = end_ts_ns;
        for side in &mut self.sides {
            if side.phase == Phase::Off {
                continue;
            }
            if !side.hello.is_empty() {
                self.stats.hello_incomplete += 1;
            }
            if side.phase != Phase::Lost && (side.body_left > 0 || side.header_len > 0) {
                self.stats.truncated_record += 1;
            }
            side.hello = Vec::new();
            side.body_left = 0;
            side.header_len = 0;
        }
    }

    /// Direction `i`'s current record's body has all come: an application_data record
    /// none of whose bytes was lost is counted whole.
    fn record_done(&mut self, i: usize) {
        let side = &mut self.sides[i];
        if side.body_type == APPLICATION_DATA && side.body_whole {
            side.stats.app_data_whole += 1;
            side.stats.app_data_whole_bytes += u64::from(side.body_len);
        }
    }

    /// A header that cannot start a record.
    fn bad_header(&mut self, dir: Dir) {
        let side = &mut self.sides[dir.index()];
        if side.fresh && self.verdict != Verdict::Tls {
            self.give_up();
        } else {
            self.stats.bad_record_header += 1;
            side.lose_framing();
        }
    }

    fn give_up(&mut self) {
        self.verdict = Verdict::NotTls;
        self.stats.not_tls += 1;
        for side in &mut self.sides {
            side.phase = Phase::Off;
            side.hello = Vec::new();
        }
    }

    fn count(&mut self, r: TlsRecord) {
        self.stats.records += 1;
        let side = &mut self.sides[r.dir.index()];
        let s = &mut side.stats;
        s.records += 1;
        s.record_bytes += RECORD_HEADER_LEN as u64 + u64::from(r.length);
        match r.content_type {
            HANDSHAKE => s.handshake += 1,
            CHANGE_CIPHER_SPEC => s.change_cipher_spec += 1,
            ALERT => s.alerts += 1,
            APPLICATION_DATA => {
                s.app_data += 1;
                s.app_data_bytes += u64::from(r.length);
                s.app_data_max = s.app_data_max.max(r.length);
                s.app_data_sizes.add(r.length);
            }
            _ => {}
        }
        // change_cipher_spec may come before a second ClientHello (RFC 8446 appendix
        // D.4); application data means the hello will not come in clear.
        if side.phase == Phase::Hello && r.content_type == APPLICATION_DATA {
            self.stats.no_hello += 1;
            side.drop_hello();
        }
    }

    /// Handshake record bytes of a direction still collecting its hello.
    fn hello_bytes(&mut self, dir: Dir, ts_ns: i64, chunk: &[u8]) {
        let want = match dir {
            Dir::Up => HS_CLIENT_HELLO,
            Dir::Down => HS_SERVER_HELLO,
        };
        let side = &mut self.sides[dir.index()];
        if side.hello.is_empty() {
            if let Some(&t) = chunk.first() {
                if t != want {
                    if dir == Dir::Up && self.verdict == Verdict::Unknown {
                        self.give_up();
                    } else {
                        self.stats.unexpected_handshake += 1;
                        side.drop_hello();
                    }
                    return;
                }
                if dir == Dir::Up {
                    self.verdict = Verdict::Tls;
                }
            }
        }
        // Copy only up to the end of the message once its length is known.
        let room = match message_len(&side.hello) {
            Some(len) => HS_HEADER_LEN + len - side.hello.len(),
            None => MAX_HELLO - side.hello.len(),
        };
        side.hello
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        let Some(len) = message_len(&side.hello) else {
            return;
        };
        if HS_HEADER_LEN + len > MAX_HELLO {
            self.stats.hello_too_large += 1;
            side.drop_hello();
            return;
        }
        if side.hello.len() < HS_HEADER_LEN + len {
            return;
        }
        let msg = std::mem::take(&mut side.hello);
        side.phase = Phase::Records;
        match dir {
            Dir::Up => self.read_client_hello(ts_ns, &msg),
            Dir::Down => self.read_server_hello(ts_ns, &msg),
        }
    }

    fn read_client_hello(&mut self, ts_ns: i64, msg: &[u8]) {
        match ClientHello::parse(msg) {
            Ok(ch) => {
                self.stats.client_hellos += 1;
                self.stats.bad_extensions += u64::from(ch.bad_extensions);
                self.client_hellos = self.client_hellos.saturating_add(1);
                if self.client_hello.is_none() {
                    self.client_hello = Some(ch);
                    self.client_hello_ts_ns = Some(ts_ns);
                }
            }
            Err(HelloError::Truncated | HelloError::NotHello(_) | HelloError::Malformed) => {
                self.stats.bad_hello += 1;
            }
        }
    }

    fn read_server_hello(&mut self, ts_ns: i64, msg: &[u8]) {
        match ServerHello::parse(msg) {
            Ok(sh) => {
                self.stats.server_hellos += 1;
                self.stats.bad_extensions += u64::from(sh.bad_extensions);
                self.verdict = Verdict::Tls;
                if sh.hello_retry {
                    self.stats.hello_retry_requests += 1;
                    // The client answers with a second ClientHello, the server with its
                    // real ServerHello.
                    for side in &mut self.sides {
                        if side.phase == Phase::Records {
                            side.phase = Phase::Hello;
                        }
                    }
                }
                self.server_hello = Some(sh);
                self.server_hello_ts_ns = Some(ts_ns);
            }
            Err(_) => self.stats.bad_hello += 1,
        }
    }
}
