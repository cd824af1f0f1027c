//! The `flows` and `dns` tables, made on a thread of their own with the address → name
//! map between them.
//!
//! A flow's `server_name` is the name the most recent DNS answer before the flow started
//! gave for its server, so each answer must be in the map before any flow that ends after
//! it is named. The flow table's thread hands both, in the order they come, to a
//! [`Naming`]: its thread ([`Namer`]) puts the answers in the map, writes the `dns` rows,
//! names the flows and writes the `flows` rows, in that same order, so the tables are
//! the same as if it were all done in place. With a capture of a million DNS exchanges
//! that is a third of the flow table thread's work (the map's inserts, the rows), and
//! half of the work of ending the flows still open at the capture's end, moved to the
//! other CPU. With a budget of one thread the [`Namer`] works in place.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use streamscope_flow::{FlowRecord, FlowStart};
use streamscope_media::dns::{self, DnsRow, NameMap, NameMapStats};
use streamscope_media::service::service_key;
use streamscope_media::{Hello, MediaClass, MediaInspector};
use streamscope_store::{DnsRecord, Error, Output, OutputSummary, SegmentFacts, TlsAppFacts};

use crate::analyze::flow_row;

/// Items per hand-over to the [`Namer`]'s thread.
const BATCH: usize = 1024;
/// Hand-overs in flight before the flow table's thread waits.
const DEPTH: usize = 4;

/// What the flows table needs of a flow's inspector, taken when the flow ends.
pub struct Found {
    class: Option<(&'static str, Option<&'static str>)>,
    http_host: Option<String>,
    hello: Option<Box<Hello>>,
    quic_version: Option<String>,
    tls_app: Option<TlsAppFacts>,
    segments: Option<SegmentFacts>,
}

impl Found {
    pub fn of(inspector: Option<&MediaInspector>) -> Found {
        let Some(i) = inspector else {
            return Found {
                class: None,
                http_host: None,
                hello: None,
                quic_version: None,
                tls_app: None,
                segments: None,
            };
        };
        Found {
            class: i.class().map(|c| (c.name(), i.class_evidence())),
            http_host: i.http_host().map(str::to_owned),
            hello: i.hello().cloned().map(Box::new),
            quic_version: i.quic_version(),
            tls_app: i.tls_app_records().map(|[up, down]| TlsAppFacts {
                records: [up.records, down.records],
                bytes: [up.bytes, down.bytes],
            }),
            segments: i.segments().map(|g| SegmentFacts {
                count: g.count,
                median_bytes: g.median_bytes,
                median_interval_ns: g.median_interval_ns,
                on_share: g.on_share,
            }),
        }
    }
}

/// One item for the [`Namer`], in the order the flow table gave them.
enum Item {
    Dns(FlowStart, DnsRow),
    Flow(FlowRecord, Found),
}

/// Writes the `dns` and `flows` tables and keeps the address → name map.
pub struct Namer {
    output: Output,
    names: NameMap,
    error: Option<Error>,
}

impl Namer {
    /// `output` writes the `flows` and `dns` tables.
    pub fn new(output: Output) -> Namer {
        Namer {
            output,
            names: NameMap::default(),
            error: None,
        }
    }

    fn keep(&mut self, r: Result<(), Error>) {
        if let (Err(e), None) = (r, &self.error) {
            self.error = Some(e);
        }
    }

    fn item(&mut self, item: Item) {
        match item {
            Item::Dns(flow, row) => self.dns(&flow, row),
            Item::Flow(record, found) => self.flow(&record, found),
        }
    }

    fn dns(&mut self, flow: &FlowStart, row: DnsRow) {
        // Answers feed the name map in the order they complete, which is capture order
        // for each flow; a lookup is by time, so the order across flows does not matter.
        self.names.insert_row(&row);
        if self.error.is_some() {
            return;
        }
        let (client, server) = match row.query_dir {
            dns::Dir::ClientToServer => (flow.client, flow.server),
            dns::Dir::ServerToClient => (flow.server, flow.client),
        };
        let record = DnsRecord {
            query_ts_ns: row.query_ts_ns,
            response_ts_ns: row.response_ts_ns,
            flow_id: flow.id,
            protocol: flow.protocol,
            client_addr: client.addr,
            client_port: client.port,
            server_addr: server.addr,
            server_port: server.port,
            id: row.id,
            qtype: row.qtype_name(),
            rcode: row.rcode_name(),
            name: row.name,
            answers: row.answers,
            addresses: row.addresses,
            cnames: row.cnames,
            min_ttl_s: row.min_ttl_s,
            latency_ns: row.latency_ns,
            retransmissions: row.retransmissions,
            truncated: row.truncated,
            malformed: row.malformed,
            outcome: row.outcome.name(),
        };
        let r = self.output.push(record);
        self.keep(r);
    }

    fn flow(&mut self, f: &FlowRecord, found: Found) {
        if self.error.is_some() {
            return;
        }
        let mut row = flow_row(f);
        row.server_name = self
            .names
            .lookup(f.server.addr, f.first_ns)
            .map(str::to_owned);
        // A flow no inspector found anything in: by its port, else `other`.
        let (class, evidence) =
            found
                .class
                .unwrap_or_else(|| match MediaClass::by_port(f.protocol, f.server.port) {
                    Some((c, why)) => (c.name(), Some(why)),
                    None => ("other", Some("no payload evidence")),
                });
        row.class = Some(class);
        row.class_evidence = evidence;
        row.http_host = found.http_host;
        if let Some(h) = found.hello {
            row.sni = h.sni;
            row.alpn = Some(h.alpn);
            row.tls_version = h.version;
            row.tls_offered_versions = Some(h.offered);
        }
        row.quic_version = found.quic_version;
        row.tls_app = found.tls_app;
        row.segments = found.segments;
        let group = [f.client.addr, f.server.addr]
            .into_iter()
            .find(|a| a.is_multicast());
        let (service, source) = service_key(
            group,
            row.sni.as_deref(),
            row.http_host.as_deref(),
            row.server_name.as_deref(),
            f.server.addr,
        );
        row.service = Some(service);
        row.service_source = Some(source.name());
        let r = self.output.push(row);
        self.keep(r);
    }

    /// Completes the two tables (or, after an error, removes them).
    fn finish(self) -> Finished {
        let names = self.names.stats();
        let tables = match self.error {
            Some(e) => {
                self.output.abort();
                Err(e)
            }
            None => self.output.finish(),
        };
        Finished { tables, names }
    }
}

/// The [`Namer`]'s work, done.
pub struct Finished {
    pub tables: Result<OutputSummary, Error>,
    pub names: NameMapStats,
}

/// The flow table's end of the [`Namer`]: in place, or on its own thread.
pub enum Naming {
    Here(Box<Namer>),
    Thread(Handoff),
}

/// Batches of items on their way to the [`Namer`]'s thread.
pub struct Handoff {
    tx: Option<SyncSender<Vec<Item>>>,
    spare: Receiver<Vec<Item>>,
    batch: Vec<Item>,
    /// Set by the thread when a table could not take a row.
    failed: Arc<AtomicBool>,
    handle: JoinHandle<Option<Finished>>,
}

impl Naming {
    /// The [`Namer`] on a thread of its own if the budget gives two threads or more
    /// (and the system one), else in place.
    pub fn start(namer: Namer, threads: usize) -> Naming {
        if threads < 2 {
            return Naming::Here(Box::new(namer));
        }
        let (tx, rx) = sync_channel::<Vec<Item>>(DEPTH);
        let (spare_tx, spare) = sync_channel::<Vec<Item>>(DEPTH + 2);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        // The namer goes over once the thread runs, so that it is still here if the
        // thread cannot be started.
        let (give, take) = sync_channel::<Namer>(1);
        let started = std::thread::Builder::new()
            .name("names".into())
            .spawn(move || {
                let Ok(mut namer) = take.recv() else {
                    return None;
                };
                for mut batch in rx {
                    for item in batch.drain(..) {
                        namer.item(item);
                    }
                    if namer.error.is_some() {
                        flag.store(true, Ordering::Relaxed);
                    }
                    // The flow table's thread makes a new one if none comes back.
                    let _ = spare_tx.try_send(batch);
                }
                Some(namer.finish())
            });
        let Ok(handle) = started else {
            return Naming::Here(Box::new(namer));
        };
        match give.send(namer) {
            Ok(()) => Naming::Thread(Handoff {
                tx: Some(tx),
                spare,
                batch: Vec::with_capacity(BATCH),
                failed,
                handle,
            }),
            // The thread ended before it took the namer: it stays here.
            Err(back) => {
                let _ = handle.join();
                Naming::Here(Box::new(back.0))
            }
        }
    }

    /// A DNS exchange of `flow`.
    pub fn dns(&mut self, flow: &FlowStart, row: DnsRow) {
        match self {
            Naming::Here(n) => n.dns(flow, row),
            Naming::Thread(h) => h.push(Item::Dns(*flow, row)),
        }
    }

    /// A flow ended, with what its inspector found.
    pub fn flow(&mut self, record: &FlowRecord, found: Found) {
        match self {
            Naming::Here(n) => n.flow(record, found),
            Naming::Thread(h) => h.push(Item::Flow(record.clone(), found)),
        }
    }

    /// Whether the tables still take rows.
    pub fn healthy(&self) -> bool {
        match self {
            Naming::Here(n) => n.error.is_none(),
            Naming::Thread(h) => !h.failed.load(Ordering::Relaxed) && h.tx.is_some(),
        }
    }

    /// Hands over the last items and completes the two tables.
    pub fn finish(self) -> Finished {
        match self {
            Naming::Here(n) => n.finish(),
            Naming::Thread(mut h) => {
                h.send();
                h.tx = None;
                match h.handle.join() {
                    Ok(Some(finished)) => finished,
                    // It took the namer (`start` made sure), so it returns it unless it
                    // panicked: pass that on.
                    Ok(None) => unreachable!("the names thread ran without its namer"),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        }
    }
}

impl Handoff {
    #[inline]
    fn push(&mut self, item: Item) {
        self.batch.push(item);
        if self.batch.len() >= BATCH {
            self.send();
        }
    }

    fn send(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let batch = std::mem::replace(&mut self.batch, next);
        if self.tx.as_ref().is_none_or(|tx| tx.send(batch).is_err()) {
            // The thread is gone (it panicked: `finish` passes that on).
            self.tx = None;
        }
    }
}
