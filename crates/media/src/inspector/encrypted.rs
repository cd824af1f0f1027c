//! A TLS or QUIC flow's state: what its hellos said, its TLS records, and the media
//! segments its shape shows.

use super::*;

/// A TLS or QUIC flow: its hellos, and the segments its shape shows.
#[derive(Debug)]
pub(super) struct Encrypted {
    pub(super) quic: bool,
    pub(super) seg: SegmentInference,
    /// The TLS reader: the hellos, then every record header (until the flow ends, or
    /// the reader finds it is not TLS).
    pub(super) tls: Option<Box<TlsFlow>>,
    /// The QUIC reader (cheap once its ClientHello is read: header forms only).
    pub(super) quic_reader: Option<Box<QuicFlow>>,
    /// What the hellos said, kept when the reader goes.
    pub(super) hello: Option<Hello>,
    /// A TLS flow's application_data records per direction (up, down), kept when the
    /// reader goes at the flow's end.
    pub(super) app_records: Option<[AppRecords; 2]>,
}

/// A TLS direction's application_data records read whole (none of their bytes lost or
/// cut off by the flow's end): how many, and their length fields summed (ciphertext
/// bytes, header excluded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppRecords {
    /// application_data records whose header was read.
    pub records: u64,
    /// Their length fields added up.
    pub bytes: u64,
}

/// What a flow's TLS or QUIC hellos said.
#[derive(Clone, Debug, Default)]
pub struct Hello {
    /// The ClientHello's server name, lower-case.
    pub sni: Option<String>,
    /// The ALPN protocols it offered.
    pub alpn: Vec<String>,
    /// The TLS version: the ServerHello's choice (else the highest offered); TLS 1.3 for
    /// QUIC's TLS handshake; `None` for gQUIC's, which is not TLS (the QUIC version is
    /// [`super::MediaInspector::quic_version`]).
    pub version: Option<String>,
    /// The TLS versions the ClientHello offered (its supported_versions extension, GREASE
    /// values left out; else its legacy version), highest first.
    pub offered: Vec<String>,
}

/// The versions a ClientHello offered, highest first, by name: its supported_versions
/// (GREASE left out), else its legacy version.
pub(super) fn offered(supported: &[u16], legacy: Option<u16>) -> Vec<String> {
    let mut v: Vec<u16> = supported
        .iter()
        .copied()
        .filter(|&v| !tls::is_grease(v))
        .collect();
    if v.is_empty() {
        v.extend(legacy);
    }
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.dedup();
    v.into_iter()
        .map(|v| tls::version_name(v).into_owned())
        .collect()
}

impl Encrypted {
    pub(super) fn new(quic: bool) -> Box<Encrypted> {
        Box::new(Encrypted {
            quic,
            seg: SegmentInference::new(SegmentConfig::default()),
            tls: (!quic).then(|| Box::new(TlsFlow::new())),
            quic_reader: quic.then(|| Box::new(QuicFlow::new())),
            hello: None,
            app_records: None,
        })
    }

    pub(super) fn packet(
        &mut self,
        flow: &FlowStart,
        s: &Segment<'_>,
        out: &mut (dyn MediaOut + Send),
    ) {
        if let Some(q) = self.quic_reader.as_mut() {
            q.on_datagram(s.dir, s.ts_ns, s.payload, &mut |_| {});
            if self.hello.is_none() {
                if let Some(ch) = q.client_hello() {
                    let offered = offered(&ch.supported_versions, None);
                    self.hello = Some(Hello {
                        sni: ch.sni.clone(),
                        alpn: ch.alpn.clone(),
                        // QUIC v1 and v2 carry TLS 1.3 (RFC 9001); gQUIC's hello offers no
                        // TLS version.
                        version: (!offered.is_empty()).then(|| "TLS 1.3".to_string()),
                        offered,
                    });
                }
            }
        }
        self.seg.on_packet(s.dir, s.ts_ns, s.payload_len, &mut |x| {
            out.segment(flow, &x)
        });
    }

    /// In-order bytes of a TLS direction.
    pub(super) fn stream(
        &mut self,
        flow: &FlowStart,
        dir: FlowDir,
        ts_ns: i64,
        bytes: &[u8],
        out: &mut (dyn MediaOut + Send),
    ) {
        if let Some(t) = self.tls.as_mut() {
            t.on_stream(dir, ts_ns, bytes, &mut |_| {});
            if !t.wants_bytes() {
                // Not TLS: nothing to keep but the counts.
                out.tls_stats().merge(t.stats());
                self.tls = None;
            }
        }
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.seg
            .on_packet(dir, ts_ns, len, &mut |x| out.segment(flow, &x));
    }

    pub(super) fn gap(&mut self, dir: FlowDir, ts_ns: i64, missing: u64) {
        if let Some(t) = self.tls.as_mut() {
            t.on_gap(dir, ts_ns, missing);
        }
    }

    /// Keeps what the TLS reader's hellos said.
    pub(super) fn keep_hello(&mut self) {
        let Some(t) = self.tls.as_ref() else {
            return;
        };
        if let Some(ch) = t.client_hello() {
            let version = t
                .server_hello()
                .map(|sh| sh.version())
                .unwrap_or_else(|| ch.max_version());
            self.hello = Some(Hello {
                sni: ch.sni.clone(),
                alpn: ch.alpn.clone(),
                version: Some(tls::version_name(version).into_owned()),
                offered: offered(&ch.supported_versions, Some(ch.legacy_version)),
            });
        }
    }

    /// The version of a QUIC flow's first long header (or gQUIC public header).
    pub(super) fn quic_version(&self) -> Option<u32> {
        self.quic_reader.as_ref().and_then(|q| q.version())
    }

    /// The flow ended: keeps what the TLS reader read, counts what the TLS or QUIC
    /// reader read, and lets the TLS reader go.
    pub(super) fn end_readers(&mut self, ended_ns: i64, out: &mut (dyn MediaOut + Send)) {
        self.keep_hello();
        if let Some(q) = self.quic_reader.as_mut() {
            q.finish(ended_ns);
            out.quic_stats().merge(q.stats());
        }
        if let Some(t) = self.tls.as_ref() {
            out.tls_stats().merge(t.stats());
        }
        if let Some(t) = self.tls.take().filter(|t| t.is_tls() == Some(true)) {
            let app = |d: FlowDir| {
                let s = t.dir_stats(d);
                AppRecords {
                    records: s.app_data_whole,
                    bytes: s.app_data_whole_bytes,
                }
            };
            self.app_records = Some([app(FlowDir::Up), app(FlowDir::Down)]);
        }
    }

    pub(super) fn wants(&self) -> Wants {
        if self.tls.is_some() {
            Wants::STREAMS
        } else {
            Wants::PACKETS
        }
    }

    /// Segment-shaped: at least three segments, received during at most half of the time
    /// they span (a bulk download is one long segment; browsing, small responses).
    pub(super) fn streaming(&self) -> bool {
        let sum = self.seg.summary();
        sum.count >= 3 && sum.on_share.is_some_and(|on| on <= 0.5)
    }
}
