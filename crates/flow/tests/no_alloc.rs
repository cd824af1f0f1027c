//! The per-packet path of the flow table allocates nothing once a flow exists.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use streamscope_flow::{tcp_flags as f, BinRecord, FlowConfig, FlowRecord, FlowSink, FlowTable};
use streamscope_wire::{Ip, Packet, Tcp, Transport};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

struct Count(u64, u64);

impl FlowSink<()> for Count {
    fn out(&mut self) -> &mut () {
        // A zero-sized box: no allocation.
        Box::leak(Box::new(()))
    }

    fn bin(&mut self, _: &BinRecord) {
        self.0 += 1;
    }
    fn flow(&mut self, _: &FlowRecord, _: Option<&()>) {
        self.1 += 1;
    }
}

fn packet(i: u16, down: bool, seq: u32) -> Packet<'static> {
    let (c, s): (std::net::IpAddr, std::net::IpAddr) =
        ("10.0.0.1".parse().unwrap(), "192.0.2.1".parse().unwrap());
    let (src, dst, sp, dp) = if down {
        (s, c, 443, 40000 + i)
    } else {
        (c, s, 40000 + i, 443)
    };
    Packet {
        ip: Some(Ip {
            src,
            dst,
            version: 4,
            protocol: 6,
            ttl: 64,
            fragment: None,
        }),
        transport: Transport::Tcp(Tcp {
            src_port: sp,
            dst_port: dp,
            seq,
            ack: 1,
            flags: f::ACK,
            window: 100,
            header_len: 20,
        }),
        payload_len: 1000,
        ..Packet::default()
    }
}

#[test]
fn packets_of_existing_flows_do_not_allocate() {
    let mut table = FlowTable::<()>::new(FlowConfig::default());
    let mut sink = Count(0, 0);
    // Create 100 flows.
    for i in 0..100u16 {
        table.process(1_000, 1066, &packet(i, false, 0), &mut sink);
    }
    let before = allocations();
    // 20,000 packets on existing flows, both directions, all within the same bin.
    for n in 0..20_000u32 {
        let i = (n % 100) as u16;
        table.process(
            2_000 + i64::from(n),
            1066,
            &packet(i, n % 3 == 0, n * 1000),
            &mut sink,
        );
    }
    let after = allocations();
    assert_eq!(after - before, 0, "the per-packet path allocated");
    table.finish(&mut sink);
    assert_eq!(sink.1, 100);
}

#[test]
fn crossing_bins_allocates_per_bin_not_per_packet() {
    let cfg = FlowConfig {
        tcp_idle_ns: 30_000_000_000,
        udp_idle_ns: 30_000_000_000,
        other_idle_ns: 30_000_000_000,
        ..FlowConfig::default()
    };
    let mut table = FlowTable::<()>::new(cfg);
    let mut sink = Count(0, 0);
    for i in 0..100u16 {
        table.process(0, 1066, &packet(i, false, 0), &mut sink);
    }
    let before = allocations();
    // 100 flows over 200 one-second bins, 10 packets per flow and bin: 200,000 packets.
    let mut n = 0u32;
    for bin in 1..=200i64 {
        for k in 0..10 {
            for i in 0..100u16 {
                n += 1;
                let ts = bin * 1_000_000_000 + k * 1_000 + i64::from(i);
                table.process(ts, 1066, &packet(i, k % 2 == 0, n * 1000), &mut sink);
            }
        }
    }
    let allocated = allocations() - before;
    let crossings = 100 * 200;
    // Allocation happens per time bucket (the ordering buffer's rows) and per flow (its
    // rate values, then a histogram), never per packet: fewer allocations than a
    // quarter of the flow-bin crossings, whatever the packets per bin.
    assert!(
        allocated < crossings / 4,
        "{allocated} allocations for {n} packets and {crossings} bin crossings"
    );
    assert!(sink.0 > 0, "bins were released while running");
}
