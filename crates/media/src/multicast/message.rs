//! [`parse_igmp`] and [`parse_mld`]: one message as a [`MulticastMessage`] view (see the
//! [module documentation](super#the-parsing-crate-etherparse-for-igmp-mld-by-hand)).

use core::iter::FusedIterator;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::igmp::ReportGroupRecordV3SliceIter;
use etherparse::{Icmpv6Slice, IgmpSlice};

use super::{Kind, MulticastError, OtherProtocol, RecordType, Version};

/// IGMP layout (RFC 3376 sections 4.1 and 4.2; RFC 2236 section 2); the type values are
/// etherparse's.
mod igmp {
    /// Length of the fixed header of every IGMP message.
    pub const HEADER_LEN: usize = 8;
    /// Length of an IGMPv3 query without sources.
    pub const V3_QUERY_LEN: usize = 12;
    /// Length of an IPv4 address.
    pub const ADDR_LEN: usize = 4;
}

/// MLD layout (RFC 2710 section 3, RFC 3810 sections 5.1 and 5.2).
mod mld {
    use core::ops::Range;

    /// Type values (IANA "ICMPv6 Parameters").
    pub const QUERY: u8 = 130;
    pub const V1_REPORT: u8 = 131;
    pub const DONE: u8 = 132;
    pub const V2_REPORT: u8 = 143;
    /// Maximum Response Delay (MLDv1, ms) or Maximum Response Code (MLDv2).
    pub const MAX_RESP: Range<usize> = 4..6;
    /// The multicast address of queries and MLDv1 messages.
    pub const GROUP: Range<usize> = 8..24;
    /// Length of an MLDv1 message and of an MLDv1 query.
    pub const V1_LEN: usize = 24;
    /// Length of an MLDv2 query without sources.
    pub const V2_QUERY_LEN: usize = 28;
    /// Number of sources of an MLDv2 query.
    pub const V2_QUERY_SOURCES: Range<usize> = 26..28;
    /// Number of multicast address records of an MLDv2 report.
    pub const V2_REPORT_RECORDS: Range<usize> = 6..8;
    /// Length of an MLDv2 report's header.
    pub const V2_REPORT_LEN: usize = 8;
    /// Length of an IPv6 address.
    pub const ADDR_LEN: usize = 16;
}

/// Group record layout, IGMPv3 and MLDv2 alike (RFC 3376 section 4.2.4, RFC 3810
/// section 5.2.4): type, aux data length in 32-bit words, source count, group address,
/// sources, aux data.
mod record {
    /// Bytes before the group address.
    pub const PREFIX_LEN: usize = 4;
    /// Unit of the aux data length.
    pub const AUX_WORD: usize = 4;
}

/// The address family of a message's addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn addr_len(self) -> usize {
        match self {
            Family::V4 => igmp::ADDR_LEN,
            Family::V6 => mld::ADDR_LEN,
        }
    }
}

/// Reads an address of the family at the start of `bytes` (at least `addr_len` long).
fn addr(family: Family, bytes: &[u8]) -> Option<IpAddr> {
    match family {
        Family::V4 => {
            let b: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        Family::V6 => {
            let b: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
    }
}

/// A list of source addresses inside a message (a query's, or a group record's). `Copy`:
/// iterate it with [`Sources::iter`] as often as needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sources<'a> {
    bytes: &'a [u8],
    family: Family,
}

impl<'a> Sources<'a> {
    fn empty(family: Family) -> Sources<'a> {
        Sources { bytes: &[], family }
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.family.addr_len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The addresses, in message order.
    pub fn iter(&self) -> SourcesIter<'a> {
        SourcesIter {
            rest: self.bytes,
            family: self.family,
        }
    }
}

impl<'a> IntoIterator for Sources<'a> {
    type Item = IpAddr;
    type IntoIter = SourcesIter<'a>;

    fn into_iter(self) -> SourcesIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`Sources`] list.
#[derive(Clone, Debug)]
pub struct SourcesIter<'a> {
    rest: &'a [u8],
    family: Family,
}

impl Iterator for SourcesIter<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        let n = self.family.addr_len();
        let a = addr(self.family, self.rest)?;
        self.rest = self.rest.get(n..).unwrap_or(&[]);
        Some(a)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len() / self.family.addr_len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for SourcesIter<'_> {}
impl FusedIterator for SourcesIter<'_> {}

/// One group record of an IGMPv3 or MLDv2 report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRecord<'a> {
    /// The record type.
    pub record_type: RecordType,
    /// The multicast address.
    pub group: IpAddr,
    /// The source addresses (for a cut record, those wholly in the message).
    pub sources: Sources<'a>,
    /// The record runs past the message's end: its type and group are there, its
    /// sources or aux data are not all (see [`MulticastMessage::record_error`]).
    pub cut: bool,
}

/// An IGMP or MLD message: a view over its bytes with the fields every message has read
/// out. Built by [`parse_igmp`] or [`parse_mld`].
#[derive(Clone, Copy, Debug)]
pub struct MulticastMessage<'a> {
    bytes: &'a [u8],
    family: Family,
    /// The type byte.
    pub message_type: u8,
    /// The version, `None` for [`Kind::Other`].
    pub version: Option<Version>,
    /// What the message does.
    pub kind: Kind,
    /// For [`Kind::Other`], which protocol the type belongs to.
    pub other: Option<OtherProtocol>,
    /// The group of a query, report or leave; `None` for a general query (group field
    /// zero), for v3 / MLDv2 reports (their groups are in the records) and for other
    /// messages.
    pub group: Option<IpAddr>,
    /// A query's maximum response time in milliseconds (IGMPv2 Max Resp Time × 100,
    /// IGMPv3 Max Resp Code decoded per RFC 3376 section 4.1.1 × 100, MLDv1 Maximum
    /// Response Delay, MLDv2 Maximum Response Code decoded per RFC 3810 section 5.1.3);
    /// `None` for an IGMPv1 query (no such field: hosts use 10 s) and for other messages.
    pub max_resp_ms: Option<u32>,
    /// Sources of an IGMPv3 / MLDv2 query (empty otherwise).
    query_sources: Sources<'a>,
    /// A report's group records: the bytes after its header.
    records: &'a [u8],
    /// How many records parsed whole (all of them unless `record_error`).
    valid_records: u16,
    /// The record count the report's header states.
    declared_records: u16,
    /// Where the records were cut.
    record_error: Option<MulticastError>,
    /// The cut record, from its start, when its type and group are there.
    cut_record: Option<&'a [u8]>,
    /// IGMP's checksum (no pseudo-header): verified at parse. Unused for MLD.
    igmp_checksum_ok: bool,
}

impl<'a> MulticastMessage<'a> {
    /// The whole message.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether this is an MLD (ICMPv6) message.
    pub fn is_mld(&self) -> bool {
        self.family == Family::V6
    }

    /// The sources of an IGMPv3 / MLDv2 group-and-source-specific query; empty for every
    /// other message.
    pub fn query_sources(&self) -> Sources<'a> {
        self.query_sources
    }

    /// The record count the report's header states (0 for messages other than v3 /
    /// MLDv2 reports).
    pub fn declared_records(&self) -> u16 {
        self.declared_records
    }

    /// The number of records [`Self::records`] yields.
    pub fn record_count(&self) -> u16 {
        self.valid_records + u16::from(self.cut_record.is_some())
    }

    /// Where the report's records were cut, when they were: a
    /// [`MulticastError::TruncatedRecord`]. The records before it are read, and the cut
    /// record too when its type and group are there ([`GroupRecord::cut`]).
    pub fn record_error(&self) -> Option<MulticastError> {
        self.record_error
    }

    /// The group records of a v3 / MLDv2 report, in order, without allocating: those
    /// that parsed whole, then a cut one whose type and group are there
    /// ([`GroupRecord::cut`]); empty for other messages.
    pub fn records(&self) -> Records<'a> {
        Records {
            cut: self.cut_record.map(|b| (b, self.family)),
            inner: match self.family {
                Family::V4 => RecordsInner::Igmp(ReportGroupRecordV3SliceIter::new(
                    self.records,
                    self.valid_records,
                )),
                Family::V6 => RecordsInner::Mld(MldRecords {
                    rest: self.records,
                    left: self.valid_records,
                }),
            },
        }
    }

    /// Whether the checksum is right. IGMP's covers the message alone (RFC 2236 section
    /// 2.3) and `src` and `dst` are not used; MLD's covers an IPv6 pseudo-header too
    /// (RFC 4443 section 2.3): `src` and `dst` are the IPv6 packet's addresses (false when
    /// they are not IPv6).
    pub fn checksum_ok(&self, src: IpAddr, dst: IpAddr) -> bool {
        match self.family {
            Family::V4 => self.igmp_checksum_ok,
            Family::V6 => match (src, dst, Icmpv6Slice::from_slice(self.bytes)) {
                (IpAddr::V6(s), IpAddr::V6(d), Ok(icmp)) => {
                    icmp.is_checksum_valid(s.octets(), d.octets())
                }
                _ => false,
            },
        }
    }

    fn new(bytes: &'a [u8], family: Family, message_type: u8, kind: Kind) -> Self {
        MulticastMessage {
            bytes,
            family,
            message_type,
            version: None,
            kind,
            other: None,
            group: None,
            max_resp_ms: None,
            query_sources: Sources::empty(family),
            records: &[],
            valid_records: 0,
            declared_records: 0,
            record_error: None,
            cut_record: None,
            igmp_checksum_ok: false,
        }
    }
}

/// Iterator over a report's group records ([`MulticastMessage::records`]).
#[derive(Clone, Debug)]
pub struct Records<'a> {
    inner: RecordsInner<'a>,
    /// The cut record, yielded last.
    cut: Option<(&'a [u8], Family)>,
}

#[derive(Clone, Debug)]
enum RecordsInner<'a> {
    Igmp(ReportGroupRecordV3SliceIter<'a>),
    Mld(MldRecords<'a>),
}

impl<'a> Iterator for Records<'a> {
    type Item = GroupRecord<'a>;

    fn next(&mut self) -> Option<GroupRecord<'a>> {
        // Only the records that parsed at parse time are asked for: no error here.
        let whole = match &mut self.inner {
            RecordsInner::Igmp(it) => it.next().and_then(Result::ok).map(|r| GroupRecord {
                record_type: RecordType::from_code(r.record_type().0),
                group: IpAddr::V4(Ipv4Addr::from(r.multicast_address())),
                sources: Sources {
                    bytes: r.source_addrs_bytes(),
                    family: Family::V4,
                },
                cut: false,
            }),
            RecordsInner::Mld(it) => it.next().and_then(Result::ok),
        };
        whole.or_else(|| {
            let (bytes, family) = self.cut.take()?;
            read_cut_record(family, bytes)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let cut = usize::from(self.cut.is_some());
        match &self.inner {
            RecordsInner::Igmp(it) => (0, it.size_hint().1.map(|n| n + cut)),
            RecordsInner::Mld(it) => (0, Some(usize::from(it.left) + cut)),
        }
    }
}

impl FusedIterator for Records<'_> {}

/// MLDv2 multicast address records, read by hand (RFC 3810 section 5.2.4).
#[derive(Clone, Debug)]
struct MldRecords<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for MldRecords<'a> {
    type Item = Result<GroupRecord<'a>, (usize, usize)>;

    /// The next record, or (bytes left, bytes needed) when it is cut; then the iterator
    /// ends.
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match read_record(Family::V6, self.rest) {
            Ok((rec, rest)) => {
                self.rest = rest;
                Some(Ok(rec))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

/// Reads one group record of the family from the start of `bytes`: the record and what
/// follows it, or (bytes left, bytes needed).
fn read_record(family: Family, bytes: &[u8]) -> Result<(GroupRecord<'_>, &[u8]), (usize, usize)> {
    let n = family.addr_len();
    let fixed = record::PREFIX_LEN + n;
    let Some(&[code, aux_words, s0, s1]) = bytes.get(..record::PREFIX_LEN) else {
        return Err((bytes.len(), fixed));
    };
    let sources = usize::from(u16::from_be_bytes([s0, s1]));
    let len = fixed + sources * n + usize::from(aux_words) * record::AUX_WORD;
    if bytes.len() < len {
        return Err((bytes.len(), len));
    }
    let group = addr(family, &bytes[record::PREFIX_LEN..]).ok_or((bytes.len(), len))?;
    let rec = GroupRecord {
        record_type: RecordType::from_code(code),
        group,
        sources: Sources {
            bytes: &bytes[fixed..fixed + sources * n],
            family,
        },
        cut: false,
    };
    Ok((rec, &bytes[len..]))
}

/// Reads a record that runs past the end of `bytes`: its fixed part, and the sources
/// wholly there (at most as many as it states). `None` when the fixed part is cut.
fn read_cut_record(family: Family, bytes: &[u8]) -> Option<GroupRecord<'_>> {
    let n = family.addr_len();
    let fixed = record::PREFIX_LEN + n;
    let (&[code, _, s0, s1], rest) = bytes.split_first_chunk::<4>()?;
    let group = addr(family, rest)?;
    let stated = usize::from(u16::from_be_bytes([s0, s1]));
    let present = (bytes.len().saturating_sub(fixed) / n).min(stated);
    Some(GroupRecord {
        record_type: RecordType::from_code(code),
        group,
        sources: Sources {
            bytes: bytes.get(fixed..fixed + present * n)?,
            family,
        },
        cut: true,
    })
}

/// The cut record's bytes, when its fixed part is there.
fn cut_start(family: Family, bytes: &[u8]) -> Option<&[u8]> {
    (bytes.len() >= record::PREFIX_LEN + family.addr_len()).then_some(bytes)
}

/// A group field: `None` when it is the unspecified address (a general query).
fn group_or_none(a: IpAddr) -> Option<IpAddr> {
    (!a.is_unspecified()).then_some(a)
}

/// Reads an IGMP message: the IPv4 payload of a protocol-2 packet, exactly as long as the
/// IP header says (RFC 1112 appendix I, RFC 2236 section 2, RFC 3376 section 4).
///
/// Types other than queries, reports and leaves are [`Kind::Other`], not errors. The
/// checksum is verified and the result kept ([`MulticastMessage::checksum_ok`]).
pub fn parse_igmp(ip_payload: &[u8]) -> Result<MulticastMessage<'_>, MulticastError> {
    let len = ip_payload.len();
    let slice = IgmpSlice::from_slice(ip_payload).map_err(|e| {
        if len < igmp::HEADER_LEN {
            MulticastError::TooShort {
                len,
                required: igmp::HEADER_LEN,
            }
        } else if len < igmp::V3_QUERY_LEN {
            // A query of 9 to 11 bytes (the only other case below 12).
            MulticastError::BadQueryLength { len }
        } else {
            MulticastError::TruncatedSources {
                len,
                required: e.required_len,
            }
        }
    })?;
    let t = slice.type_u8();
    let v4 = |b: [u8; 4]| group_or_none(IpAddr::V4(Ipv4Addr::from(b)));
    let mut m = MulticastMessage::new(ip_payload, Family::V4, t, Kind::Other);
    m.igmp_checksum_ok = slice.is_checksum_valid();
    match &slice {
        IgmpSlice::MembershipQuery(q) => {
            // RFC 3376 section 7.1: 8 bytes, v1 when Max Resp Code is zero.
            let code = q.max_response_time();
            m.kind = Kind::Query;
            m.group = v4(q.group_address().octets);
            if code == 0 {
                m.version = Some(Version::Igmp1);
            } else {
                m.version = Some(Version::Igmp2);
                m.max_resp_ms = Some(u32::from(code) * 100);
            }
        }
        IgmpSlice::MembershipQueryWithSources(q) => {
            m.kind = Kind::Query;
            m.version = Some(Version::Igmp3);
            m.group = v4(q.group_address().octets);
            m.max_resp_ms = Some(u32::from(q.max_response_code().as_10th_secs()) * 100);
            m.query_sources = Sources {
                bytes: q.source_addrs_bytes(),
                family: Family::V4,
            };
        }
        IgmpSlice::MembershipReportV1(r) => {
            m.kind = Kind::Report;
            m.version = Some(Version::Igmp1);
            m.group = v4(r.group_address().octets);
        }
        IgmpSlice::MembershipReportV2(r) => {
            m.kind = Kind::Report;
            m.version = Some(Version::Igmp2);
            m.group = v4(r.group_address().octets);
        }
        IgmpSlice::LeaveGroup(r) => {
            m.kind = Kind::Leave;
            m.version = Some(Version::Igmp2);
            m.group = v4(r.group_address().octets);
        }
        IgmpSlice::MembershipReportV3(r) => {
            m.kind = Kind::Report;
            m.version = Some(Version::Igmp3);
            m.records = r.payload();
            m.declared_records = r.num_of_records();
            // One walk to find a cut record: at most one step per record, and a record
            // takes at least 8 bytes.
            let mut rest_len = m.records.len();
            for (i, rec) in r.group_records().enumerate() {
                match rec {
                    Ok(rec) => {
                        m.valid_records += 1;
                        rest_len = rest_len.saturating_sub(rec.slice().len());
                    }
                    Err(e) => {
                        m.record_error = Some(MulticastError::TruncatedRecord {
                            index: u16::try_from(i).unwrap_or(u16::MAX),
                            len: rest_len,
                            required: e.required_len,
                        });
                        let at = m.records.len().saturating_sub(rest_len);
                        m.cut_record = cut_start(Family::V4, m.records.get(at..).unwrap_or(&[]));
                        break;
                    }
                }
            }
        }
        IgmpSlice::Unknown(_) => {
            m.other = Some(OtherProtocol::from_type(t));
        }
    }
    Ok(m)
}

/// Reads an MLD message: an ICMPv6 message from its type byte, exactly as long as the
/// IPv6 payload after the extension headers (RFC 2710 section 3, RFC 3810 sections 5.1
/// and 5.2). Types other than 130, 131, 132 and 143 are [`MulticastError::NotMld`].
///
/// The checksum needs the IPv6 addresses: see [`MulticastMessage::checksum_ok`].
pub fn parse_mld(icmpv6_message: &[u8]) -> Result<MulticastMessage<'_>, MulticastError> {
    let b = icmpv6_message;
    let len = b.len();
    let Some(&t) = b.first() else {
        return Err(MulticastError::TooShort {
            len,
            required: mld::V2_REPORT_LEN,
        });
    };
    let u16_at = |r: core::ops::Range<usize>| -> u16 {
        match b.get(r) {
            Some(&[x, y]) => u16::from_be_bytes([x, y]),
            _ => 0,
        }
    };
    let group = || addr(Family::V6, b.get(mld::GROUP).unwrap_or(&[])).and_then(group_or_none);
    let need = |required: usize| {
        if len < required {
            Err(MulticastError::TooShort { len, required })
        } else {
            Ok(())
        }
    };
    let mut m = MulticastMessage::new(b, Family::V6, t, Kind::Report);
    match t {
        mld::QUERY => {
            need(mld::V1_LEN)?;
            m.kind = Kind::Query;
            m.group = group();
            let code = u16_at(mld::MAX_RESP);
            if len == mld::V1_LEN {
                m.version = Some(Version::Mld1);
                m.max_resp_ms = Some(u32::from(code));
            } else if len < mld::V2_QUERY_LEN {
                return Err(MulticastError::BadQueryLength { len });
            } else {
                let n = usize::from(u16_at(mld::V2_QUERY_SOURCES));
                let required = mld::V2_QUERY_LEN + n * mld::ADDR_LEN;
                if len < required {
                    return Err(MulticastError::TruncatedSources { len, required });
                }
                m.version = Some(Version::Mld2);
                m.max_resp_ms = Some(mld2_max_resp_ms(code));
                m.query_sources = Sources {
                    bytes: &b[mld::V2_QUERY_LEN..required],
                    family: Family::V6,
                };
            }
        }
        mld::V1_REPORT | mld::DONE => {
            need(mld::V1_LEN)?;
            m.version = Some(Version::Mld1);
            m.kind = if t == mld::DONE {
                Kind::Leave
            } else {
                Kind::Report
            };
            m.group = group();
        }
        mld::V2_REPORT => {
            need(mld::V2_REPORT_LEN)?;
            m.version = Some(Version::Mld2);
            m.records = &b[mld::V2_REPORT_LEN..];
            m.declared_records = u16_at(mld::V2_REPORT_RECORDS);
            let mut it = MldRecords {
                rest: m.records,
                left: m.declared_records,
            };
            let mut i: u16 = 0;
            loop {
                let at = it.rest;
                match it.next() {
                    None => break,
                    Some(Ok(_)) => m.valid_records += 1,
                    Some(Err((left, required))) => {
                        m.record_error = Some(MulticastError::TruncatedRecord {
                            index: i,
                            len: left,
                            required,
                        });
                        m.cut_record = cut_start(Family::V6, at);
                    }
                }
                i = i.saturating_add(1);
            }
        }
        message_type => return Err(MulticastError::NotMld { message_type }),
    }
    Ok(m)
}

/// MLDv2 Maximum Response Code to milliseconds (RFC 3810 section 5.1.3): below 32768 the
/// code itself, else `(mant | 0x1000) << (exp + 3)`.
pub(super) fn mld2_max_resp_ms(code: u16) -> u32 {
    if code < 0x8000 {
        u32::from(code)
    } else {
        let exp = u32::from((code >> 12) & 0x7);
        let mant = u32::from(code & 0x0fff);
        (mant | 0x1000) << (exp + 3)
    }
}
