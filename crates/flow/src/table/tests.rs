use super::*;
use streamscope_wire::{Ip, Transport};

/// The flows ended.
#[derive(Default)]
struct Ended(Vec<FlowRecord>);

impl FlowSink<()> for Ended {
    fn out(&mut self) -> &mut () {
        // A zero-sized box: no allocation.
        Box::leak(Box::new(()))
    }

    fn bin(&mut self, _: &BinRecord) {}
    fn flow(&mut self, r: &FlowRecord, _: Option<&()>) {
        self.0.push(r.clone());
    }
}

impl Ended {
    /// Id, last packet, packets up and end reason of each flow ended.
    fn brief(&self) -> Vec<(i64, i64, u64, EndReason)> {
        self.0
            .iter()
            .map(|r| (r.id, r.last_ns, r.packets[0], r.end_reason))
            .collect()
    }

    fn has(&self, id: i64) -> bool {
        self.0.iter().any(|r| r.id == id)
    }
}

fn udp(src_port: u16) -> Packet<'static> {
    Packet {
        ip: Some(Ip {
            src: "10.0.0.1".parse().unwrap(),
            dst: "192.0.2.7".parse().unwrap(),
            version: 4,
            protocol: 17,
            ttl: 64,
            fragment: None,
        }),
        transport: Transport::Udp {
            src_port,
            dst_port: 53,
        },
        payload_len: 20,
        ..Packet::default()
    }
}

/// A wheel entry keeps only the low 32 bits of the flow id. A newer flow in the same
/// slot whose id shares them (2^32 flows later) must be checked against its own
/// last packet, not ended at the deadline of the flow the entry was filed for.
#[test]
fn a_newer_flow_sharing_a_slot_and_an_id_tag_ends_at_its_own_deadline() {
    let timeout = 10 * NS_PER_S;
    let cfg = FlowConfig {
        max_flows: 16,
        udp_idle_ns: timeout,
        tcp_idle_ns: timeout,
        other_idle_ns: timeout,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::<()>::new(cfg);
    let mut out = Ended::default();
    for i in 0..16 {
        t.process(i64::from(i), 100, &udp(10_000 + i as u16), &mut out);
    }
    // The next flow evicts flow 0 from slot 0 and takes the slot; its entry under
    // flow 0's deadline (second 10) stays in the wheel.
    t.next_id = 1 << 32;
    t.process(100, 100, &udp(20_000), &mut out);
    assert_eq!(out.brief(), vec![(0, 0, 1, EndReason::Evicted)]);
    assert_eq!(id_tag(0), id_tag(1 << 32));
    // The new flow stays busy past second 10, then falls silent at second 15.
    for s in 1..=15 {
        t.process(s * NS_PER_S, 100, &udp(20_000), &mut out);
    }
    // The fifteen other flows have ended idle by now; the new one has not.
    assert_eq!(out.0.len(), 16);
    assert!(!out.has(1 << 32), "ended early: {:?}", out.brief());
    // It ends once its own deadline (second 25) has passed.
    t.process(24 * NS_PER_S, 100, &udp(30_000), &mut out);
    assert!(!out.has(1 << 32));
    t.process(27 * NS_PER_S, 100, &udp(30_000), &mut out);
    let new = out.brief().into_iter().find(|f| f.0 == 1 << 32);
    assert_eq!(new, Some((1 << 32, 15 * NS_PER_S, 16, EndReason::Idle)));
}

/// The packet count carries past its 32 bits like the byte counts (4 Gi packets are
/// too many to send in a test: the count starts near the limit).
#[test]
fn packet_counts_carry_past_32_bits() {
    let mut t = FlowTable::<()>::new(FlowConfig::default());
    let mut out = Ended::default();
    t.process(0, 100, &udp(1000), &mut out);
    if let Some(Some(f)) = t.slab.get_mut(0) {
        f.packets[0] = u32::MAX;
    }
    t.process(1, 100, &udp(1000), &mut out);
    t.process(2, 100, &udp(1000), &mut out);
    t.finish(&mut out);
    assert_eq!(
        out.brief(),
        vec![(0, 2, (1 << 32) + 1, EndReason::CaptureEnd)]
    );
}

/// A slot stays the size its documentation gives.
#[test]
fn a_flow_slot_is_88_bytes() {
    assert_eq!(std::mem::size_of::<Option<Flow<()>>>(), 88);
    // A TCP flow's box: its state and the pointers to `More` and the inspector,
    // no larger than the state alone was (72 bytes) before the three shared a box
    // (and in the same 80-byte chunk of glibc's allocator as at 64).
    assert_eq!(std::mem::size_of::<Ext<()>>(), 72);
}

/// An IPv6 flow's address pair is held while the flow is and given back when it
/// ends, whichever way it ends; the flows come out with their addresses.
#[test]
fn ipv6_address_pairs_live_as_long_as_their_flows() {
    let cfg = FlowConfig {
        max_flows: 64,
        udp_idle_ns: 10 * NS_PER_S,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::<()>::new(cfg);
    let mut out = Ended::default();
    let v6 = |i: u16| {
        let mut p = udp(10_000 + i);
        if let Some(ip) = p.ip.as_mut() {
            ip.src = format!("2001:db8::{:x}", i + 1).parse().unwrap();
            ip.dst = "2001:db8:53::53".parse().unwrap();
            ip.version = 6;
        }
        p
    };
    for i in 0..30u16 {
        t.process(i64::from(i), 100, &v6(i), &mut out);
        t.process(i64::from(i), 100, &udp(i), &mut out);
    }
    assert_eq!(t.v6.len(), 30);
    // Past the 64-flow bound, evictions end some flows of both kinds.
    for i in 30..60u16 {
        t.process(NS_PER_S + i64::from(i), 100, &v6(i), &mut out);
        t.process(NS_PER_S + i64::from(i), 100, &udp(i), &mut out);
    }
    assert!(t.stats().flows_evicted > 0);
    let ended_v6 = out.0.iter().filter(|f| f.client.addr.is_ipv6()).count();
    assert!(ended_v6 > 0);
    assert_eq!(t.v6.len(), 60 - ended_v6);
    // Idle expiry ends the rest.
    t.process(20 * NS_PER_S, 100, &udp(1000), &mut out);
    assert_eq!(t.v6.len(), 0);
    t.finish(&mut out);
    let mut v6_clients: Vec<_> = out
        .0
        .iter()
        .map(|f| f.client.addr)
        .filter(|a| a.is_ipv6())
        .collect();
    v6_clients.sort();
    v6_clients.dedup();
    assert_eq!(v6_clients.len(), 60);
    assert_eq!(v6_clients[0].to_string(), "2001:db8::1");
}
