//! An independent reading of TCP directions and the HTTP/1.x responses in them, for the
//! tests that compare streamscope's HTTP rows with tshark's and with the captures
//! themselves. It never calls streamscope's own reassembly or parser: a direction's
//! segments are put in sequence order here, and responses are found from RFC 9112's
//! framing (sections 4, 6 and 7.1).

/// One TCP segment with payload, as captured.
pub struct Segment {
    pub ts_ns: i64,
    pub seq: u32,
    pub payload: Vec<u8>,
}

/// One direction of a connection.
#[derive(Default)]
pub struct Half {
    /// Sequence number of the first payload byte, from the SYN.
    pub isn: Option<u32>,
    pub segments: Vec<Segment>,
}

/// What happens on one direction, in order.
pub enum Event {
    /// Bytes never captured (0 first when the SYN was not seen).
    Gap(u64),
    Bytes(Vec<u8>),
}

/// A direction's bytes in sequence order, with the time of the segment that brought
/// them (never earlier than the bytes before): retransmitted bytes once, holes as gaps,
/// a gap of 0 first when the SYN was not seen.
pub fn reassemble(half: &Half) -> Vec<(i64, Event)> {
    let mut out = Vec::new();
    let Some(first) = half.segments.first() else {
        return out;
    };
    let base = half.isn.unwrap_or(first.seq);
    let mut segs: Vec<(i64, &Segment)> = half
        .segments
        .iter()
        .map(|s| (i64::from(s.seq.wrapping_sub(base) as i32), s))
        .collect();
    segs.sort_by_key(|&(rel, s)| (rel, s.ts_ns));
    let mut expected = if half.isn.is_some() {
        0
    } else {
        out.push((first.ts_ns, Event::Gap(0)));
        segs[0].0
    };
    let mut last_ts = i64::MIN;
    for (rel, s) in segs {
        let end = rel + s.payload.len() as i64;
        if end <= expected {
            continue;
        }
        let ts = s.ts_ns.max(last_ts);
        last_ts = ts;
        if rel > expected {
            out.push((ts, Event::Gap((rel - expected) as u64)));
            expected = rel;
        }
        let from = (expected - rel) as usize;
        out.push((ts, Event::Bytes(s.payload[from..].to_vec())));
        expected = end;
    }
    out
}

/// One HTTP response found in a server direction.
pub struct Response<'a> {
    pub status: u16,
    /// The media type, lower-case, without parameters (empty when absent).
    pub content_type: String,
    /// The body its framing announces is all captured (no hole before its end).
    pub body_captured: bool,
    /// The captured part of its body.
    pub body: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The final responses (status 101 or 200 and above) of a server direction's events: a
/// status line (`HTTP/1.x NNN `) wherever it is in a run of contiguous bytes outside a
/// body already read (a capture may start inside a body, and a response may follow a
/// body without a line feed), a head up to its blank line, and its body by
/// `Content-Length`, chunked framing, or the connection's end.
pub fn responses(events: &[(i64, Event)], mut each: impl FnMut(Response<'_>)) {
    let mut runs: Vec<Vec<u8>> = vec![Vec::new()];
    for (_, ev) in events {
        match ev {
            Event::Gap(_) => runs.push(Vec::new()),
            Event::Bytes(b) => runs.last_mut().expect("a run").extend_from_slice(b),
        }
    }
    let n = runs.len();
    for (r, run) in runs.iter().enumerate() {
        let last = r + 1 == n;
        let mut at = 0;
        while at < run.len() {
            let rest = &run[at..];
            let starts = rest.len() >= 12
                && rest.starts_with(b"HTTP/1.")
                && rest[8] == b' '
                && rest[9..12].iter().all(u8::is_ascii_digit);
            if !starts {
                match find(&rest[1..], b"HTTP/1.") {
                    Some(i) => {
                        at += i + 1;
                        continue;
                    }
                    None => break,
                }
            }
            let Some(head_len) = find(rest, b"\r\n\r\n").map(|i| i + 4) else {
                break;
            };
            let head = String::from_utf8_lossy(&rest[..head_len]);
            let status: u16 = head[9..12].parse().expect("digits");
            let content_type = header(&head, "content-type")
                .map(|v| {
                    v.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
            let body = &rest[head_len..];
            let chunked = header(&head, "transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().ends_with("chunked"));
            let length = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok());
            let (captured, used) = if status == 204 || status == 304 || status < 200 {
                (true, 0)
            } else if chunked {
                match find(body, b"0\r\n\r\n") {
                    Some(i) => (true, i + 5),
                    None => (false, body.len()),
                }
            } else if let Some(len) = length {
                (body.len() >= len, len.min(body.len()))
            } else {
                (last, body.len())
            };
            if status >= 200 || status == 101 {
                each(Response {
                    status,
                    content_type,
                    body_captured: captured,
                    body: &body[..used],
                });
            }
            at += head_len + used;
        }
    }
}
