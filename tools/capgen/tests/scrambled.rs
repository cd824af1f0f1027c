//! Scrambled channels: video and audio packets carry transport_scrambling_control '10'
//! and no readable PES header; PSI stays clear; the truth marks exactly those PIDs.

use capgen::{generate, Format, Options, Scenario};

const SCENARIO: &str = r#"
name = "scrambled"
start = "2024-03-01T20:00:00Z"
duration_s = 3.0

[[channel]]
name = "pay"
group = "239.2.2.2"
source = "10.255.0.9"
encap = "udp"
port = 5000
mux_rate_bps = 400_000
video_bps = 250_000
audio_bps = 64_000
scrambled = true

[[channel]]
name = "free"
group = "239.2.2.3"
source = "10.255.0.10"
encap = "udp"
port = 5002
mux_rate_bps = 400_000
video_bps = 250_000
audio_bps = 64_000
"#;

#[test]
fn scrambled_pids_are_marked_in_the_packets_and_the_truth() {
    let sc = Scenario::from_toml(SCENARIO).expect("scenario");
    let opts = Options {
        seed: 1,
        format: Format::Pcap,
        ts_resolution: None,
    };
    let (truth, bytes) = generate(&sc, &opts, Vec::new()).expect("generate");
    let truth = serde_json::to_value(&truth).unwrap();

    // Per group: TS packets with scrambling bits set, and clear PES starts, per PID.
    let mut scrambled: std::collections::BTreeMap<(u8, u16), (u64, u64)> = Default::default();
    let mut off = 24;
    while off + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        let frame = &bytes[off + 16..off + 16 + caplen];
        off += 16 + caplen;
        // Ethernet + IPv4 (no options, no VLAN in this scenario) + UDP.
        if frame.len() < 42 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
            continue;
        }
        let group_last = frame[33];
        for ts in frame[42..].chunks_exact(188) {
            assert_eq!(ts[0], 0x47);
            let pid = u16::from(ts[1] & 0x1f) << 8 | u16::from(ts[2]);
            let e = scrambled.entry((group_last, pid)).or_default();
            if ts[3] >> 6 == 0b10 {
                e.0 += 1;
            }
            let pusi = ts[1] & 0x40 != 0;
            let payload_at = if ts[3] & 0x20 != 0 {
                5 + usize::from(ts[4])
            } else {
                4
            };
            if pusi && ts.get(payload_at..payload_at + 3) == Some(&[0, 0, 1]) && pid != 0 {
                e.1 += 1;
            }
        }
    }
    for flow in truth["flows"].as_array().unwrap() {
        let name = flow["name"].as_str().unwrap();
        let group_last: u8 = flow["client_addr"]
            .as_str()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        for pid in flow["ts"]["pids"].as_array().unwrap() {
            let p = pid["pid"].as_u64().unwrap() as u16;
            let role = pid["role"].as_str().unwrap();
            let marked = pid["scrambled"].as_bool().unwrap();
            let (n_scrambled, pes_starts) =
                scrambled.get(&(group_last, p)).copied().unwrap_or_default();
            let expect = name == "pay" && (role == "video" || role == "audio");
            assert_eq!(marked, expect, "{name} {role}: truth");
            if role == "null" {
                continue;
            }
            if expect {
                assert_eq!(
                    n_scrambled,
                    pid["packets"].as_u64().unwrap(),
                    "{name} {role}"
                );
                assert_eq!(pes_starts, 0, "{name} {role}: a PES header is readable");
            } else {
                assert_eq!(n_scrambled, 0, "{name} {role}");
                if role == "video" || role == "audio" {
                    assert!(pes_starts > 0, "{name} {role}: clear PES starts");
                }
            }
        }
    }
}
