//! Multicast group management: IGMP (RFC 1112, RFC 2236, RFC 3376) and MLD (RFC 2710,
//! RFC 3810) messages, one [`MulticastEvent`] per membership statement, and the channel
//! sessions they add up to ([`ChannelSessions`]): who watched which group, from when to
//! when, how long the first packet took to arrive (zap time) and how many bytes the group
//! carried meanwhile.
//!
//! # What is here
//!
//! * [`parse_igmp`] reads an IGMP message (the IPv4 payload of protocol 2) and
//!   [`parse_mld`] an MLD message (an ICMPv6 message of type 130, 131, 132 or 143, from
//!   its type byte). Both give a [`MulticastMessage`]: a small `Copy` view that borrows
//!   the message; its group records ([`MulticastMessage::records`]) and source lists
//!   ([`Sources`]) are iterated in place, without allocating.
//! * [`events`] turns a parsed message, its IP source and destination and its time into
//!   [`MulticastEvent`] rows; [`MulticastReader`] does parse, count ([`MulticastStats`])
//!   and events in one call per packet.
//! * [`ChannelSessions`] follows memberships per host, group and (for source-specific
//!   joins) source, from the events, and measures each one against the group's data
//!   packets ([`ChannelSessions::on_group_packet`]); ended sessions come out as
//!   [`ChannelSession`] rows.
//!
//! # The parsing crate: etherparse for IGMP, MLD by hand
//!
//! IGMP is read with [`etherparse`]'s `IgmpSlice` (new in 0.21, already the workspace's
//! dissector): it tells the message types apart (queries of IGMPv1/v2 and IGMPv3 by
//! length, as RFC 3376 section 7.1 says), checks that a v3 query's sources are present,
//! iterates v3 group records lazily with a length check per record, and verifies the
//! checksum (RFC 1071 over the whole message; IGMP has no pseudo-header). What this
//! module adds: IGMPv1 and IGMPv2 queries told apart by the Max Resp Time (zero for v1,
//! RFC 2236 section 4 and RFC 3376 section 7.1), the other protocols that share IGMP's
//! protocol number ([`OtherProtocol`]), and one walk over the v3 records at parse time so
//! that a cut record is found and counted once (see [lax reading](self#lax-reading)).
//!
//! etherparse does not parse MLD: its `Icmpv6Type` knows the MLD type numbers only as
//! constants and yields them as `Unknown`. `smoltcp`'s `wire::mld` reads MLDv2 queries
//! and reports but not MLDv1 (type 131 and 132 messages, a 24-byte query), and would
//! bring a TCP/IP stack with its own address types for those few lines. MLD is therefore
//! read here from RFC 2710 section 3
//! (MLDv1: query, report, done) and RFC 3810 sections 5.1 and 5.2 (MLDv2 query and
//! report); its checksum, which covers an IPv6 pseudo-header (RFC 4443 section 2.3), is
//! verified with etherparse's `Icmpv6Slice::is_checksum_valid` once the addresses are
//! known ([`MulticastMessage::checksum_ok`]).
//!
//! ## Versions and kinds
//!
//! | message | type | version | kind |
//! |---|---|---|---|
//! | IGMP query, 8 bytes, Max Resp Time 0 | 0x11 | igmp1 | query |
//! | IGMP query, 8 bytes, Max Resp Time > 0 | 0x11 | igmp2 | query |
//! | IGMP query, 12 bytes or more | 0x11 | igmp3 | query |
//! | IGMPv1 report | 0x12 | igmp1 | report |
//! | IGMPv2 report | 0x16 | igmp2 | report |
//! | IGMPv2 leave | 0x17 | igmp2 | leave |
//! | IGMPv3 report | 0x22 | igmp3 | report |
//! | DVMRP, PIMv1, mtrace, RGMP, MRD, others | any other | none | other |
//! | MLD query, 24 bytes | 130 | mld1 | query |
//! | MLD query, 28 bytes or more | 130 | mld2 | query |
//! | MLDv1 report | 131 | mld1 | report |
//! | MLDv1 done | 132 | mld1 | leave |
//! | MLDv2 report | 143 | mld2 | report |
//!
//! An IGMP query of 9 to 11 bytes and an MLD query of 25 to 27 bytes match no version
//! and are ignored, as RFC 3376 section 7.1 and RFC 3810 section 8.1 require
//! ([`MulticastError::BadQueryLength`]). The message is what the IP header's length
//! covers: the caller passes it without link-layer padding (with padding, an 8-byte
//! IGMPv2 query would read as a malformed IGMPv3 one).
//!
//! ## Lax reading
//!
//! A message whose fixed part is all there parses. A v3 / MLDv2 report whose group
//! records run past its end keeps the records before the cut, and the cut record itself
//! when its type and group are there, with the sources wholly present
//! ([`GroupRecord::cut`]; tshark shows such a record's type and group too); it says where
//! it was cut ([`MulticastMessage::record_error`], counted in
//! [`MulticastStats::truncated_records`]), and its events are marked
//! [`MulticastEvent::malformed`]. The session tracker acts on a cut record like on a
//! whole one: its type and group are right, its source list may be short.
//! A bad checksum is counted ([`MulticastStats::bad_checksum`]) and the message still
//! read: captures taken on the sending host often carry checksums left to the network
//! card. A message too short for its fixed part, a query of a length no version has, and
//! a v3 / MLDv2 query whose sources are cut give a [`MulticastError`] and no event.
//!
//! # Events
//!
//! One [`MulticastEvent`] per message, except that a v3 / MLDv2 report gives one per
//! group record: a report states a membership per record (each record has its own group,
//! record type and sources), so a row per record lets a table be filtered and grouped by
//! group and record type directly, where a row per message would need a nested list of
//! records. A report with no record (or whose first record is cut) still gives one event,
//! with no group and no record type, so that every message read has at least one row.
//!
//! # Channel sessions
//!
//! A session is one host's membership of one group (any source), or for a
//! source-specific (SSM, RFC 4607) join, of one group from one source. How the events
//! drive it (the record types are RFC 3376 section 4.2.12 and RFC 3810 section 5.2.12):
//!
//! | event | effect |
//! |---|---|
//! | IGMPv1/v2 or MLDv1 report | join (host, group), or refresh it |
//! | MODE_IS_EXCLUDE, CHANGE_TO_EXCLUDE (any source list) | join (host, group), or refresh it; end the host's source-specific sessions of the group (`replaced`) |
//! | MODE_IS_INCLUDE, CHANGE_TO_INCLUDE, ALLOW_NEW_SOURCES with sources | join (host, group, source) for each source, or refresh it |
//! | CHANGE_TO_INCLUDE with sources | also ends an open (host, group) session (`replaced`): the host switched from any-source to those sources |
//! | CHANGE_TO_INCLUDE, MODE_IS_INCLUDE with no source | leave: all the host's sessions of the group end |
//! | BLOCK_OLD_SOURCES | leave (host, group, source) for each source |
//! | IGMPv2 leave, MLDv1 done | leave (host, group) |
//! | queries, other messages | nothing |
//!
//! An EXCLUDE record with sources ("all but these") is taken as an any-source membership:
//! its bytes count the excluded sources' packets too. ALLOW and BLOCK records sent in
//! EXCLUDE mode (unblocking or blocking a source while joined to all) are read as
//! source-specific joins and leaves; the any-source session they belong with is not
//! changed by them.
//!
//! A membership with no report for [`SessionConfig::membership_interval_ns`] ends by
//! `timeout` at its last report plus the interval (the group membership interval of RFC
//! 3376 section 8.4 and RFC 3810 section 9.4: robustness 2 × query interval 125 s + query
//! response interval 10 s = 260 s). Sessions still open at [`ChannelSessions::finish`]
//! end by `capture_end`, or by `timeout` when their interval ran out before the capture's
//! end.
//!
//! **Zap time** is the time from the join to the first data packet of the group (of the
//! source, for a source-specific session) seen on the capture link at or after the join.
//! **Bytes** are those of the group's packets (the source's) between join and end: on a
//! shared link every host joined to a group sees the same packets, so each session counts
//! the group's bytes in its own window. Per group the tracker keeps a running byte and
//! packet counter, a session takes a snapshot at its join and another at its end, so
//! [`ChannelSessions::on_group_packet`] costs two hash look-ups at most (the group, and
//! the group and source when source-specific sessions are open), whatever the number of
//! sessions; a session waiting for its first packet is visited once, by that packet.
//!
//! # Bounds
//!
//! At most [`SessionConfig::max_sessions`] sessions are open (default 65,536); a join
//! beyond is refused and counted ([`SessionStats::refused`]). Every other structure
//! (group counters, the expiry heap, the first-packet waiting lists) is bounded by the
//! number of open sessions: hostile input can fill the table, not grow it. A message is
//! at most an IP datagram, so its records and sources are bounded by its length.
//!
//! # Time
//!
//! Times are the capture's nanoseconds. Expiry runs when time moves forward in any call;
//! packets out of time order are processed where they come (a session's last report is
//! the latest seen).
//!
//! # Panics
//!
//! None: every read is length-checked first (parse), and the tracker's arithmetic
//! saturates.

mod event;
mod message;
mod session;
#[cfg(test)]
mod tests;

pub use event::{events, MulticastEvent, MulticastReader, MulticastStats};
pub use message::{
    parse_igmp, parse_mld, GroupRecord, MulticastMessage, Records, Sources, SourcesIter,
};
pub use session::{
    ChannelSession, ChannelSessions, EndReason, GroupHandle, SessionConfig, SessionStats,
};

use core::fmt;

/// IGMP or MLD version of a message ([module documentation](self#versions-and-kinds)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// IGMPv1 (RFC 1112 appendix I).
    Igmp1,
    /// IGMPv2 (RFC 2236).
    Igmp2,
    /// IGMPv3 (RFC 3376).
    Igmp3,
    /// MLDv1 (RFC 2710).
    Mld1,
    /// MLDv2 (RFC 3810).
    Mld2,
}

impl Version {
    /// The name used in tables: `igmp1`, `igmp2`, `igmp3`, `mld1`, `mld2`.
    pub fn name(self) -> &'static str {
        match self {
            Version::Igmp1 => "igmp1",
            Version::Igmp2 => "igmp2",
            Version::Igmp3 => "igmp3",
            Version::Mld1 => "mld1",
            Version::Mld2 => "mld2",
        }
    }

    /// Whether this is an MLD version (IPv6).
    pub fn is_mld(self) -> bool {
        matches!(self, Version::Mld1 | Version::Mld2)
    }
}

/// What a message does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A router's membership query (general, group-specific or group-and-source-specific).
    Query,
    /// A host's membership report.
    Report,
    /// IGMPv2 Leave Group or MLDv1 Done.
    Leave,
    /// Another protocol on IGMP's protocol number ([`OtherProtocol`]).
    Other,
}

impl Kind {
    /// The name used in tables: `query`, `report`, `leave`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Report => "report",
            Kind::Leave => "leave",
            Kind::Other => "other",
        }
    }
}

/// IGMP type values that are not group membership messages (IANA "IGMP Type Numbers").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OtherProtocol {
    /// DVMRP (RFC 1075, type 0x13).
    Dvmrp,
    /// PIM version 1 (type 0x14).
    PimV1,
    /// Cisco trace messages (type 0x15).
    CiscoTrace,
    /// Multicast traceroute response (type 0x1e) and query / request (type 0x1f)
    /// (RFC 8487).
    Mtrace,
    /// Multicast router discovery advertisement, solicitation, termination (RFC 4286,
    /// types 0x30–0x32).
    RouterDiscovery,
    /// Router-port Group Management Protocol (RFC 3488, types 0xfc–0xff).
    Rgmp,
    /// Any other type value (the obsolete IGMPv0 of RFC 988 included).
    Unknown(u8),
}

impl OtherProtocol {
    /// Classifies an IGMP type byte that is not a membership message.
    pub fn from_type(t: u8) -> OtherProtocol {
        match t {
            0x13 => OtherProtocol::Dvmrp,
            0x14 => OtherProtocol::PimV1,
            0x15 => OtherProtocol::CiscoTrace,
            0x1e | 0x1f => OtherProtocol::Mtrace,
            0x30..=0x32 => OtherProtocol::RouterDiscovery,
            0xfc..=0xff => OtherProtocol::Rgmp,
            t => OtherProtocol::Unknown(t),
        }
    }

    /// The name used in tables: `dvmrp`, `pim_v1`, `cisco_trace`, `mtrace`,
    /// `router_discovery`, `rgmp`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            OtherProtocol::Dvmrp => "dvmrp",
            OtherProtocol::PimV1 => "pim_v1",
            OtherProtocol::CiscoTrace => "cisco_trace",
            OtherProtocol::Mtrace => "mtrace",
            OtherProtocol::RouterDiscovery => "router_discovery",
            OtherProtocol::Rgmp => "rgmp",
            OtherProtocol::Unknown(_) => "unknown",
        }
    }
}

/// Group record type of an IGMPv3 or MLDv2 report (RFC 3376 section 4.2.12, RFC 3810
/// section 5.2.12; the values are the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    /// 1: current state, INCLUDE filter mode with these sources.
    ModeIsInclude,
    /// 2: current state, EXCLUDE filter mode with these sources.
    ModeIsExclude,
    /// 3: filter mode changed to INCLUDE these sources.
    ChangeToInclude,
    /// 4: filter mode changed to EXCLUDE these sources.
    ChangeToExclude,
    /// 5: these sources are now wanted.
    AllowNewSources,
    /// 6: these sources are no longer wanted.
    BlockOldSources,
    /// Any other value (hosts ignore such records).
    Unknown(u8),
}

impl RecordType {
    /// The record type of a record's first byte.
    pub fn from_code(code: u8) -> RecordType {
        match code {
            1 => RecordType::ModeIsInclude,
            2 => RecordType::ModeIsExclude,
            3 => RecordType::ChangeToInclude,
            4 => RecordType::ChangeToExclude,
            5 => RecordType::AllowNewSources,
            6 => RecordType::BlockOldSources,
            c => RecordType::Unknown(c),
        }
    }

    /// The value on the wire.
    pub fn code(self) -> u8 {
        match self {
            RecordType::ModeIsInclude => 1,
            RecordType::ModeIsExclude => 2,
            RecordType::ChangeToInclude => 3,
            RecordType::ChangeToExclude => 4,
            RecordType::AllowNewSources => 5,
            RecordType::BlockOldSources => 6,
            RecordType::Unknown(c) => c,
        }
    }

    /// The RFC's name in lower case, as used in tables (and in capgen's truth):
    /// `mode_is_include`, `mode_is_exclude`, `change_to_include`, `change_to_exclude`,
    /// `allow_new_sources`, `block_old_sources`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            RecordType::ModeIsInclude => "mode_is_include",
            RecordType::ModeIsExclude => "mode_is_exclude",
            RecordType::ChangeToInclude => "change_to_include",
            RecordType::ChangeToExclude => "change_to_exclude",
            RecordType::AllowNewSources => "allow_new_sources",
            RecordType::BlockOldSources => "block_old_sources",
            RecordType::Unknown(_) => "unknown",
        }
    }
}

/// Why a message could not be read. Lengths are in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MulticastError {
    /// Shorter than the fixed part of its type.
    TooShort {
        /// The message's length.
        len: usize,
        /// The fixed part's length.
        required: usize,
    },
    /// A query of a length no version has: IGMP 9–11 bytes (RFC 3376 section 7.1), MLD
    /// 25–27 bytes (RFC 3810 section 8.1).
    BadQueryLength {
        /// The message's length.
        len: usize,
    },
    /// An IGMPv3 or MLDv2 query whose source addresses run past its end.
    TruncatedSources {
        /// The message's length.
        len: usize,
        /// The length its source count needs.
        required: usize,
    },
    /// A group record of a report runs past the message's end (the records before it
    /// are read).
    TruncatedRecord {
        /// Index of the cut record (from 0).
        index: u16,
        /// Bytes left for it.
        len: usize,
        /// Bytes it needs (at least its fixed part).
        required: usize,
    },
    /// An ICMPv6 type that is not MLD (130, 131, 132, 143) was given to [`parse_mld`].
    NotMld {
        /// The ICMPv6 type.
        message_type: u8,
    },
}

impl MulticastError {
    /// The kind's name, as counted in [`MulticastStats`]: `too_short`,
    /// `bad_query_length`, `truncated_sources`, `truncated_record`, `not_mld`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            MulticastError::TooShort { .. } => "too_short",
            MulticastError::BadQueryLength { .. } => "bad_query_length",
            MulticastError::TruncatedSources { .. } => "truncated_sources",
            MulticastError::TruncatedRecord { .. } => "truncated_record",
            MulticastError::NotMld { .. } => "not_mld",
        }
    }
}

impl fmt::Display for MulticastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MulticastError::TooShort { len, required } => {
                write!(f, "message of {len} bytes, its fixed part needs {required}")
            }
            MulticastError::BadQueryLength { len } => {
                write!(f, "query of {len} bytes matches no version")
            }
            MulticastError::TruncatedSources { len, required } => {
                write!(f, "query of {len} bytes, its sources need {required}")
            }
            MulticastError::TruncatedRecord {
                index,
                len,
                required,
            } => write!(f, "group record {index} needs {required} bytes, {len} left"),
            MulticastError::NotMld { message_type } => {
                write!(f, "ICMPv6 type {message_type} is not MLD")
            }
        }
    }
}

impl std::error::Error for MulticastError {}
