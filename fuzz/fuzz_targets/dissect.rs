//! Arbitrary frames on every link type the dissector knows (and an unknown one): it
//! never panics, and what it returns borrows from the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamscope_capture::LinkType;
use streamscope_wire::dissect;

/// Ethernet, BSD loopback, raw IP (101, 12, 14, 228, 229), Linux SLL and SLL2,
/// OpenBSD loopback, and one the dissector does not know.
const LINKS: [u32; 11] = [1, 0, 101, 12, 14, 228, 229, 113, 276, 108, 147];

fuzz_target!(|data: &[u8]| {
    let [sel, cut, frame @ ..] = data else {
        return;
    };
    let link = LinkType(LINKS[usize::from(*sel) % LINKS.len()]);
    // The wire length: the frame's own, or longer when the capture cut it.
    let orig_len = frame.len() as u32 + u32::from(*cut & 0x7f);
    let packet = dissect(link, frame, orig_len);
    let (lo, hi) = (
        frame.as_ptr() as usize,
        frame.as_ptr() as usize + frame.len(),
    );
    let p = packet.payload.as_ptr() as usize;
    assert!(
        packet.payload.is_empty() || (p >= lo && p + packet.payload.len() <= hi),
        "payload outside the frame"
    );
    assert!(usize::from(packet.vlan_count) <= frame.len() / 4);
    if packet.ip.is_none() {
        assert!(packet.payload.is_empty());
    }
});
