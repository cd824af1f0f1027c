//! An HTTP/1.x flow's state: its transactions, and the MPEG-TS its bodies carry.

use super::*;

/// An HTTP flow: its transactions, and the MPEG-TS its bodies carry.
#[derive(Debug)]
pub(super) struct Http {
    pub(super) flow: HttpFlow,
    pub(super) ts: Option<Box<TsAnalyzer>>,
    /// The first Host seen.
    pub(super) host: Option<String>,
    /// Transactions by role: playlists and segments, panel streams.
    pub(super) playlists: u64,
    pub(super) segments: u64,
    pub(super) panel_streams: u64,
}

/// Where an HTTP flow's transactions and TS bodies go.
pub(super) struct HttpTo<'a> {
    pub(super) out: &'a mut (dyn MediaOut + Send),
    pub(super) flow: &'a FlowStart,
    pub(super) ts: &'a mut Option<Box<TsAnalyzer>>,
    pub(super) host: &'a mut Option<String>,
    pub(super) counts: [&'a mut u64; 3],
}

impl HttpSink for HttpTo<'_> {
    fn transaction(&mut self, tx: HttpTransaction) {
        if self.host.is_none() {
            self.host.clone_from(&tx.host);
        }
        let i = match tx.role {
            Role::Playlist => Some(0),
            Role::Segment => Some(1),
            Role::PanelStream => Some(2),
            _ => None,
        };
        if let Some(i) = i {
            *self.counts[i] += 1;
        }
        self.out.http(self.flow, &tx);
    }

    fn body(&mut self, _: u64, ts_ns: i64, bytes: &[u8]) {
        if self.ts.is_none() {
            *self.ts = Some(Box::new(TsAnalyzer::new(self.out.ts_config())));
        }
        if let Some(t) = self.ts.as_mut() {
            t.on_bytes(ts_ns, bytes);
        }
    }

    fn playlist_index(&mut self) -> Option<&mut PlaylistIndex> {
        self.out.playlist_index()
    }
}

impl Http {
    pub(super) fn to<'a>(
        &'a mut self,
        flow: &'a FlowStart,
        out: &'a mut (dyn MediaOut + Send),
    ) -> (&'a mut HttpFlow, HttpTo<'a>) {
        let Http {
            flow: f,
            ts,
            host,
            playlists,
            segments,
            panel_streams,
        } = self;
        (
            f,
            HttpTo {
                out,
                flow,
                ts,
                host,
                counts: [playlists, segments, panel_streams],
            },
        )
    }

    pub(super) fn class(&self) -> MediaClass {
        let ts = self.ts.as_ref().is_some_and(|t| t.summary().packets > 0);
        if self.panel_streams > 0 && ts {
            MediaClass::HttpTs
        } else if self.playlists + self.segments > 0 {
            MediaClass::Hls
        } else if ts {
            MediaClass::HttpTs
        } else {
            MediaClass::Other
        }
    }
}
