//! [`MulticastEvent`] rows from parsed messages (see the
//! [module documentation](super#events)), and [`MulticastReader`]: parse, count, emit.

use core::net::IpAddr;

use super::message::{parse_igmp, parse_mld, MulticastMessage, Sources};
use super::{Kind, MulticastError, OtherProtocol, RecordType, Version};

/// One membership statement: a message, or one group record of a v3 / MLDv2 report. It
/// borrows the message for its source list (no allocation); the table writer copies what
/// it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MulticastEvent<'a> {
    /// The message's capture time.
    pub ts_ns: i64,
    /// The IP source: the host reporting, or the querier.
    pub host: IpAddr,
    /// The IP destination (the group, all-hosts, all-routers or the v3 / MLDv2 report
    /// address).
    pub destination: IpAddr,
    /// The version; `None` for [`Kind::Other`].
    pub version: Option<Version>,
    /// What the message does.
    pub kind: Kind,
    /// The type byte.
    pub message_type: u8,
    /// For [`Kind::Other`], which protocol.
    pub other: Option<OtherProtocol>,
    /// The group: the message's, or the record's for a v3 / MLDv2 report; `None` for a
    /// general query, a report without records and other messages.
    pub group: Option<IpAddr>,
    /// The group record's type, for a v3 / MLDv2 report.
    pub record_type: Option<RecordType>,
    /// The group record's sources, or an IGMPv3 / MLDv2 query's; empty otherwise.
    pub sources: Sources<'a>,
    /// A query's maximum response time in milliseconds
    /// ([`MulticastMessage::max_resp_ms`]).
    pub max_resp_ms: Option<u32>,
    /// Whether the message's checksum is right (the row is kept either way).
    pub checksum_ok: bool,
    /// The message's group records were cut: the rows are the records before the cut
    /// and the cut one when its type and group are there
    /// ([`super::MulticastMessage::record_error`]).
    pub malformed: bool,
}

/// Emits the events of one message (see the [module documentation](super#events)):
/// one, or one per group record of a v3 / MLDv2 report with records. `src` and `dst` are
/// the IP packet's addresses (the checksum of MLD needs them).
pub fn events<'a>(
    msg: &MulticastMessage<'a>,
    ts_ns: i64,
    src: IpAddr,
    dst: IpAddr,
    out: &mut impl FnMut(MulticastEvent<'a>),
) {
    emit(msg, ts_ns, src, dst, msg.checksum_ok(src, dst), out);
}

fn emit<'a>(
    msg: &MulticastMessage<'a>,
    ts_ns: i64,
    src: IpAddr,
    dst: IpAddr,
    checksum_ok: bool,
    out: &mut impl FnMut(MulticastEvent<'a>),
) {
    let base = MulticastEvent {
        ts_ns,
        host: src,
        destination: dst,
        version: msg.version,
        kind: msg.kind,
        message_type: msg.message_type,
        other: msg.other,
        group: msg.group,
        record_type: None,
        sources: msg.query_sources(),
        max_resp_ms: msg.max_resp_ms,
        checksum_ok,
        malformed: msg.record_error().is_some(),
    };
    let mut any = false;
    for rec in msg.records() {
        any = true;
        out(MulticastEvent {
            group: Some(rec.group),
            record_type: Some(rec.record_type),
            sources: rec.sources,
            ..base
        });
    }
    if !any {
        out(base);
    }
}

/// What [`MulticastReader`] read, and what it could not, by kind. Add readers' stats with
/// [`MulticastStats::merge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MulticastStats {
    /// IGMP messages read (any type).
    pub igmp_messages: u64,
    /// MLD messages read.
    pub mld_messages: u64,
    /// Messages read per version.
    pub igmp1: u64,
    /// IGMPv2 messages.
    pub igmp2: u64,
    /// IGMPv3 messages.
    pub igmp3: u64,
    /// MLDv1 messages.
    pub mld1: u64,
    /// MLDv2 messages.
    pub mld2: u64,
    /// Queries read.
    pub queries: u64,
    /// Reports read.
    pub reports: u64,
    /// IGMPv2 leaves and MLDv1 dones read.
    pub leaves: u64,
    /// Other IGMP types (DVMRP, PIMv1, mtrace, RGMP, ...).
    pub other: u64,
    /// Group records of v3 / MLDv2 reports read.
    pub group_records: u64,
    /// Messages read whose checksum is wrong.
    pub bad_checksum: u64,
    /// Messages shorter than their fixed part ([`MulticastError::TooShort`]).
    pub too_short: u64,
    /// Queries of a length no version has ([`MulticastError::BadQueryLength`]).
    pub bad_query_length: u64,
    /// v3 / MLDv2 queries with cut sources ([`MulticastError::TruncatedSources`]).
    pub truncated_sources: u64,
    /// Reports read whose records were cut ([`MulticastError::TruncatedRecord`]).
    pub truncated_records: u64,
    /// ICMPv6 messages given to the MLD reader that are not MLD
    /// ([`MulticastError::NotMld`]).
    pub not_mld: u64,
}

impl MulticastStats {
    /// Adds another reader's counts.
    pub fn merge(&mut self, other: &MulticastStats) {
        for (mine, theirs) in self.fields_mut().into_iter().zip(other.values()) {
            *mine += theirs;
        }
    }

    /// Every counter with its name, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        Self::NAMES.into_iter().zip(self.values())
    }

    /// Messages not read, all kinds together (`not_mld` excluded: those are not
    /// malformed, only not MLD).
    pub fn malformed(&self) -> u64 {
        self.too_short + self.bad_query_length + self.truncated_sources
    }

    /// Counts one parse result.
    fn count(&mut self, r: &Result<MulticastMessage<'_>, MulticastError>, checksum_ok: bool) {
        let m = match r {
            Ok(m) => m,
            Err(e) => {
                *match e {
                    MulticastError::TooShort { .. } => &mut self.too_short,
                    MulticastError::BadQueryLength { .. } => &mut self.bad_query_length,
                    MulticastError::TruncatedSources { .. } => &mut self.truncated_sources,
                    MulticastError::TruncatedRecord { .. } => &mut self.truncated_records,
                    MulticastError::NotMld { .. } => &mut self.not_mld,
                } += 1;
                return;
            }
        };
        *if m.is_mld() {
            &mut self.mld_messages
        } else {
            &mut self.igmp_messages
        } += 1;
        if let Some(v) = m.version {
            *match v {
                Version::Igmp1 => &mut self.igmp1,
                Version::Igmp2 => &mut self.igmp2,
                Version::Igmp3 => &mut self.igmp3,
                Version::Mld1 => &mut self.mld1,
                Version::Mld2 => &mut self.mld2,
            } += 1;
        }
        *match m.kind {
            Kind::Query => &mut self.queries,
            Kind::Report => &mut self.reports,
            Kind::Leave => &mut self.leaves,
            Kind::Other => &mut self.other,
        } += 1;
        self.group_records += u64::from(m.record_count());
        self.truncated_records += u64::from(m.record_error().is_some());
        self.bad_checksum += u64::from(!checksum_ok);
    }

    const NAMES: [&'static str; 18] = [
        "igmp_messages",
        "mld_messages",
        "igmp1",
        "igmp2",
        "igmp3",
        "mld1",
        "mld2",
        "queries",
        "reports",
        "leaves",
        "other",
        "group_records",
        "bad_checksum",
        "too_short",
        "bad_query_length",
        "truncated_sources",
        "truncated_records",
        "not_mld",
    ];

    fn values(&self) -> [u64; 18] {
        [
            self.igmp_messages,
            self.mld_messages,
            self.igmp1,
            self.igmp2,
            self.igmp3,
            self.mld1,
            self.mld2,
            self.queries,
            self.reports,
            self.leaves,
            self.other,
            self.group_records,
            self.bad_checksum,
            self.too_short,
            self.bad_query_length,
            self.truncated_sources,
            self.truncated_records,
            self.not_mld,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; 18] {
        [
            &mut self.igmp_messages,
            &mut self.mld_messages,
            &mut self.igmp1,
            &mut self.igmp2,
            &mut self.igmp3,
            &mut self.mld1,
            &mut self.mld2,
            &mut self.queries,
            &mut self.reports,
            &mut self.leaves,
            &mut self.other,
            &mut self.group_records,
            &mut self.bad_checksum,
            &mut self.too_short,
            &mut self.bad_query_length,
            &mut self.truncated_sources,
            &mut self.truncated_records,
            &mut self.not_mld,
        ]
    }
}

/// Parses, counts and emits events: one call per IGMP or MLD packet. Holds nothing but
/// its counters.
#[derive(Clone, Debug, Default)]
pub struct MulticastReader {
    stats: MulticastStats,
}

impl MulticastReader {
    /// A reader with zero counts.
    pub fn new() -> MulticastReader {
        MulticastReader::default()
    }

    /// What was read so far.
    pub fn stats(&self) -> &MulticastStats {
        &self.stats
    }

    /// One IGMP message (the IPv4 payload, as long as the IP header says) sent from `src`
    /// to `dst` at `ts_ns`: its events go to `out`; the parsed message is returned.
    pub fn on_igmp<'a>(
        &mut self,
        ts_ns: i64,
        src: IpAddr,
        dst: IpAddr,
        message: &'a [u8],
        out: &mut impl FnMut(MulticastEvent<'a>),
    ) -> Option<MulticastMessage<'a>> {
        self.read(parse_igmp(message), ts_ns, src, dst, out)
    }

    /// One MLD message (the ICMPv6 message from its type byte) sent from `src` to `dst`
    /// at `ts_ns`: its events go to `out`; the parsed message is returned.
    pub fn on_mld<'a>(
        &mut self,
        ts_ns: i64,
        src: IpAddr,
        dst: IpAddr,
        message: &'a [u8],
        out: &mut impl FnMut(MulticastEvent<'a>),
    ) -> Option<MulticastMessage<'a>> {
        self.read(parse_mld(message), ts_ns, src, dst, out)
    }

    fn read<'a>(
        &mut self,
        r: Result<MulticastMessage<'a>, MulticastError>,
        ts_ns: i64,
        src: IpAddr,
        dst: IpAddr,
        out: &mut impl FnMut(MulticastEvent<'a>),
    ) -> Option<MulticastMessage<'a>> {
        let checksum_ok = r.as_ref().is_ok_and(|m| m.checksum_ok(src, dst));
        self.stats.count(&r, checksum_ok);
        let m = r.ok()?;
        emit(&m, ts_ns, src, dst, checksum_ok, out);
        Some(m)
    }
}
