//! Unit tests: the sample packets of RFC 9001 appendix A (version 1) and RFC 9369
//! appendix A (version 2), byte for byte as the RFCs print them; packets sealed here
//! from the same RFCs for CRYPTO reassembly across packets and datagrams, coalescing,
//! Retry; version naming; and arbitrary bytes.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use proptest::prelude::*;

use super::crypto::{decode_packet_number, initial_secrets, Keys, Opener, Protection};
use super::{
    client_first_version, version_name, Dir, LongType, PacketForm, QuicDatagram, QuicFlow,
    VersionKind, VERSION_1, VERSION_2,
};

const UP: Dir = Dir::Up;
const DOWN: Dir = Dir::Down;

/// The hex digits of `s` as bytes (spaces and line breaks ignored).
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|c| (c as char).to_digit(16).unwrap() as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    hex(s).try_into().unwrap()
}

/// The client-chosen Destination Connection ID of both appendices.
const DCID: &str = "8394c8f03e515708";

/// RFC 9001 appendix A.2: the client Initial's CRYPTO frame (then PADDING to 1162 bytes).
const V1_CLIENT_CRYPTO: &str = "\
    060040f1010000ed0303ebf8fa56f129 39b9584a3896472ec40bb863cfd3e868
    04fe3a47f06a2b69484c000004130113 02010000c000000010000e00000b6578
    616d706c652e636f6dff01000100000a 00080006001d00170018001000070005
    04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba
    baf4559fedba753de171fa71f50f1ce1 5d43e994ec74d748002b000302030400
    0d0010000e0403050306030203080408 050806002d00020101001c0002400100
    3900320408ffffffffffffffff050480 00ffff07048000ffff08011001048000
    75300901100f088394c8f03e51570806 048000ffff";
/// RFC 9001 appendix A.2: the client Initial's unprotected header.
const V1_CLIENT_HEADER: &str = "\
    c300000001088394c8f03e5157080000449e00000002";
/// RFC 9001 appendix A.2: the protected client Initial.
const V1_CLIENT_PACKET: &str = "\
    c000000001088394c8f03e5157080000 449e7b9aec34d1b1c98dd7689fb8ec11
    d242b123dc9bd8bab936b47d92ec356c 0bab7df5976d27cd449f63300099f399
    1c260ec4c60d17b31f8429157bb35a12 82a643a8d2262cad67500cadb8e7378c
    8eb7539ec4d4905fed1bee1fc8aafba1 7c750e2c7ace01e6005f80fcb7df6212
    30c83711b39343fa028cea7f7fb5ff89 eac2308249a02252155e2347b63d58c5
    457afd84d05dfffdb20392844ae81215 4682e9cf012f9021a6f0be17ddd0c208
    4dce25ff9b06cde535d0f920a2db1bf3 62c23e596d11a4f5a6cf3948838a3aec
    4e15daf8500a6ef69ec4e3feb6b1d98e 610ac8b7ec3faf6ad760b7bad1db4ba3
    485e8a94dc250ae3fdb41ed15fb6a8e5 eba0fc3dd60bc8e30c5c4287e53805db
    059ae0648db2f64264ed5e39be2e20d8 2df566da8dd5998ccabdae053060ae6c
    7b4378e846d29f37ed7b4ea9ec5d82e7 961b7f25a9323851f681d582363aa5f8
    9937f5a67258bf63ad6f1a0b1d96dbd4 faddfcefc5266ba6611722395c906556
    be52afe3f565636ad1b17d508b73d874 3eeb524be22b3dcbc2c7468d54119c74
    68449a13d8e3b95811a198f3491de3e7 fe942b330407abf82a4ed7c1b311663a
    c69890f4157015853d91e923037c227a 33cdd5ec281ca3f79c44546b9d90ca00
    f064c99e3dd97911d39fe9c5d0b23a22 9a234cb36186c4819e8b9c5927726632
    291d6a418211cc2962e20fe47feb3edf 330f2c603a9d48c0fcb5699dbfe58964
    25c5bac4aee82e57a85aaf4e2513e4f0 5796b07ba2ee47d80506f8d2c25e50fd
    14de71e6c418559302f939b0e1abd576 f279c4b2e0feb85c1f28ff18f58891ff
    ef132eef2fa09346aee33c28eb130ff2 8f5b766953334113211996d20011a198
    e3fc433f9f2541010ae17c1bf202580f 6047472fb36857fe843b19f5984009dd
    c324044e847a4f4a0ab34f719595de37 252d6235365e9b84392b061085349d73
    203a4a13e96f5432ec0fd4a1ee65accd d5e3904df54c1da510b0ff20dcc0c77f
    cb2c0e0eb605cb0504db87632cf3d8b4 dae6e705769d1de354270123cb11450e
    fc60ac47683d7b8d0f811365565fd98c 4c8eb936bcab8d069fc33bd801b03ade
    a2e1fbc5aa463d08ca19896d2bf59a07 1b851e6c239052172f296bfb5e724047
    90a2181014f3b94a4e97d117b4381303 68cc39dbb2d198065ae3986547926cd2
    162f40a29f0c3c8745c0f50fba3852e5 66d44575c29d39a03f0cda721984b6f4
    40591f355e12d439ff150aab7613499d bd49adabc8676eef023b15b65bfc5ca0
    6948109f23f350db82123535eb8a7433 bdabcb909271a6ecbcb58b936a88cd4e
    8f2e6ff5800175f113253d8fa9ca8885 c2f552e657dc603f252e1a8e308f76f0
    be79e2fb8f5d5fbbe2e30ecadd220723 c8c0aea8078cdfcb3868263ff8f09400
    54da48781893a7e49ad5aff4af300cd8 04a6b6279ab3ff3afb64491c85194aab
    760d58a606654f9f4400e8b38591356f bf6425aca26dc85244259ff2b19c41b9
    f96f3ca9ec1dde434da7d2d392b905dd f3d1f9af93d1af5950bd493f5aa731b4
    056df31bd267b6b90a079831aaf579be 0a39013137aac6d404f518cfd4684064
    7e78bfe706ca4cf5e9c5453e9f7cfd2b 8b4c8d169a44e55c88d4a9a7f9474241
    e221af44860018ab0856972e194cd934";
/// RFC 9001 appendix A.3: the server Initial's payload (ACK and CRYPTO).
const V1_SERVER_PAYLOAD: &str = "\
    02000000000600405a020000560303ee fce7f7b37ba1d1632e96677825ddf739
    88cfc79825df566dc5430b9a045a1200 130100002e00330024001d00209d3c94
    0d89690b84d08a60993c144eca684d10 81287c834d5311bcf32bb9da1a002b00
    020304";
/// RFC 9001 appendix A.3: the server Initial's unprotected header.
const V1_SERVER_HEADER: &str = "\
    c1000000010008f067a5502a4262b50040750001";
/// RFC 9001 appendix A.3: the protected server Initial.
const V1_SERVER_PACKET: &str = "\
    cf000000010008f067a5502a4262b500 4075c0d95a482cd0991cd25b0aac406a
    5816b6394100f37a1c69797554780bb3 8cc5a99f5ede4cf73c3ec2493a1839b3
    dbcba3f6ea46c5b7684df3548e7ddeb9 c3bf9c73cc3f3bded74b562bfb19fb84
    022f8ef4cdd93795d77d06edbb7aaf2f 58891850abbdca3d20398c276456cbc4
    2158407dd074ee";
/// RFC 9369 appendix A.2: the client Initial's CRYPTO frame (then PADDING to 1162 bytes).
const V2_CLIENT_CRYPTO: &str = "\
    060040f1010000ed0303ebf8fa56f129 39b9584a3896472ec40bb863cfd3e868
    04fe3a47f06a2b69484c000004130113 02010000c000000010000e00000b6578
    616d706c652e636f6dff01000100000a 00080006001d00170018001000070005
    04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba
    baf4559fedba753de171fa71f50f1ce1 5d43e994ec74d748002b000302030400
    0d0010000e0403050306030203080408 050806002d00020101001c0002400100
    3900320408ffffffffffffffff050480 00ffff07048000ffff08011001048000
    75300901100f088394c8f03e51570806 048000ffff";
/// RFC 9369 appendix A.2: the client Initial's unprotected header.
const V2_CLIENT_HEADER: &str = "\
    d36b3343cf088394c8f03e5157080000449e00000002";
/// RFC 9369 appendix A.2: the protected client Initial.
const V2_CLIENT_PACKET: &str = "\
    d76b3343cf088394c8f03e5157080000 449ea0c95e82ffe67b6abcdb4298b485
    dd04de806071bf03dceebfa162e75d6c 96058bdbfb127cdfcbf903388e99ad04
    9f9a3dd4425ae4d0992cfff18ecf0fdb 5a842d09747052f17ac2053d21f57c5d
    250f2c4f0e0202b70785b7946e992e58 a59ac52dea6774d4f03b55545243cf1a
    12834e3f249a78d395e0d18f4d766004 f1a2674802a747eaa901c3f10cda5500
    cb9122faa9f1df66c392079a1b40f0de 1c6054196a11cbea40afb6ef5253cd68
    18f6625efce3b6def6ba7e4b37a40f77 32e093daa7d52190935b8da58976ff33
    12ae50b187c1433c0f028edcc4c2838b 6a9bfc226ca4b4530e7a4ccee1bfa2a3
    d396ae5a3fb512384b2fdd851f784a65 e03f2c4fbe11a53c7777c023462239dd
    6f7521a3f6c7d5dd3ec9b3f233773d4b 46d23cc375eb198c63301c21801f6520
    bcfb7966fc49b393f0061d974a2706df 8c4a9449f11d7f3d2dcbb90c6b877045
    636e7c0c0fe4eb0f697545460c806910 d2c355f1d253bc9d2452aaa549e27a1f
    ac7cf4ed77f322e8fa894b6a83810a34 b361901751a6f5eb65a0326e07de7c12
    16ccce2d0193f958bb3850a833f7ae43 2b65bc5a53975c155aa4bcb4f7b2c4e5
    4df16efaf6ddea94e2c50b4cd1dfe060 17e0e9d02900cffe1935e0491d77ffb4
    fdf85290fdd893d577b1131a610ef6a5 c32b2ee0293617a37cbb08b847741c3b
    8017c25ca9052ca1079d8b78aebd4787 6d330a30f6a8c6d61dd1ab5589329de7
    14d19d61370f8149748c72f132f0fc99 f34d766c6938597040d8f9e2bb522ff9
    9c63a344d6a2ae8aa8e51b7b90a4a806 105fcbca31506c446151adfeceb51b91
    abfe43960977c87471cf9ad4074d30e1 0d6a7f03c63bd5d4317f68ff325ba3bd
    80bf4dc8b52a0ba031758022eb025cdd 770b44d6d6cf0670f4e990b22347a7db
    848265e3e5eb72dfe8299ad7481a4083 22cac55786e52f633b2fb6b614eaed18
    d703dd84045a274ae8bfa73379661388 d6991fe39b0d93debb41700b41f90a15
    c4d526250235ddcd6776fc77bc97e7a4 17ebcb31600d01e57f32162a8560cacc
    7e27a096d37a1a86952ec71bd89a3e9a 30a2a26162984d7740f81193e8238e61
    f6b5b984d4d3dfa033c1bb7e4f0037fe bf406d91c0dccf32acf423cfa1e70710
    10d3f270121b493ce85054ef58bada42 310138fe081adb04e2bd901f2f13458b
    3d6758158197107c14ebb193230cd115 7380aa79cae1374a7c1e5bbcb80ee23e
    06ebfde206bfb0fcbc0edc4ebec30966 1bdd908d532eb0c6adc38b7ca7331dce
    8dfce39ab71e7c32d318d136b6100671 a1ae6a6600e3899f31f0eed19e3417d1
    34b90c9058f8632c798d4490da498730 7cba922d61c39805d072b589bd52fdf1
    e86215c2d54e6670e07383a27bbffb5a ddf47d66aa85a0c6f9f32e59d85a44dd
    5d3b22dc2be80919b490437ae4f36a0a e55edf1d0b5cb4e9a3ecabee93dfc6e3
    8d209d0fa6536d27a5d6fbb17641cde2 7525d61093f1b28072d111b2b4ae5f89
    d5974ee12e5cf7d5da4d6a31123041f3 3e61407e76cffcdcfd7e19ba58cf4b53
    6f4c4938ae79324dc402894b44faf8af bab35282ab659d13c93f70412e85cb19
    9a37ddec600545473cfb5a05e08d0b20 9973b2172b4d21fb69745a262ccde96b
    a18b2faa745b6fe189cf772a9f84cbfc";
/// RFC 9369 appendix A.3: the server Initial's payload (ACK and CRYPTO).
const V2_SERVER_PAYLOAD: &str = "\
    02000000000600405a020000560303ee fce7f7b37ba1d1632e96677825ddf739
    88cfc79825df566dc5430b9a045a1200 130100002e00330024001d00209d3c94
    0d89690b84d08a60993c144eca684d10 81287c834d5311bcf32bb9da1a002b00
    020304";
/// RFC 9369 appendix A.3: the server Initial's unprotected header.
const V2_SERVER_HEADER: &str = "\
    d16b3343cf0008f067a5502a4262b50040750001";
/// RFC 9369 appendix A.3: the protected server Initial.
const V2_SERVER_PACKET: &str = "\
    dc6b3343cf0008f067a5502a4262b500 4075d92faaf16f05d8a4398c47089698
    baeea26b91eb761d9b89237bbf872630 17915358230035f7fd3945d88965cf17
    f9af6e16886c61bfc703106fbaf3cb4c fa52382dd16a393e42757507698075b2
    c984c707f0a0812d8cd5a6881eaf21ce da98f4bd23f6fe1a3e2c43edd9ce7ca8
    4bed8521e2e140";

/// RFC 9001 appendix A.1 (version 1) and RFC 9369 appendix A.1 (version 2): initial
/// secret, client and server secrets, key, IV and header protection key.
struct KeyVectors {
    initial: &'static str,
    client: &'static str,
    client_keys: [&'static str; 3],
    server: &'static str,
    server_keys: [&'static str; 3],
}

const V1_KEYS: KeyVectors = KeyVectors {
    initial: "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44",
    client: "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea",
    client_keys: [
        "1f369613dd76d5467730efcbe3b1a22d",
        "fa044b2f42a3fd3b46fb255c",
        "9f50449e04a0e810283a1e9933adedd2",
    ],
    server: "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b",
    server_keys: [
        "cf3a5331653c364c88f0f379b6067e37",
        "0ac1493ca1905853b0bba03e",
        "c206b8d9b9f0f37644430b490eeaa314",
    ],
};

const V2_KEYS: KeyVectors = KeyVectors {
    initial: "2062e8b3cd8d52092614b8071d0aa1fb7c2e3ac193f78b280e72d8f5751f6aba",
    client: "14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b",
    client_keys: [
        "8b1a0bc121284290a29e0971b5cd045d",
        "91f73e2351d8fa91660e909f",
        "45b95e15235d6f45a6b19cbcb0294ba9",
    ],
    server: "0263db1782731bf4588e7e4d93b7463907cb8cd8200b5da55a8bd488eafc37c1",
    server_keys: [
        "82db637861d55e1d011f19ea71d5d2a7",
        "dd13c276499c0249d3310652",
        "edf6d05c83121201b436e16877593c3a",
    ],
};

fn keys_of(v: [&str; 3]) -> Keys {
    Keys {
        key: arr(v[0]),
        iv: arr(v[1]),
        hp: arr(v[2]),
    }
}

fn check_keys(p: Protection, v: &KeyVectors) {
    let (initial, client, server) = initial_secrets(p, &hex(DCID));
    assert_eq!(initial, arr::<32>(v.initial));
    assert_eq!(client, arr::<32>(v.client));
    assert_eq!(server, arr::<32>(v.server));
    assert_eq!(Keys::from_secret(p, &client), keys_of(v.client_keys));
    assert_eq!(Keys::from_secret(p, &server), keys_of(v.server_keys));
    assert_eq!(Keys::client_initial(p, &hex(DCID)), keys_of(v.client_keys));
}

#[test]
fn rfc9001_a1_keys() {
    check_keys(Protection::V1, &V1_KEYS);
}

#[test]
fn rfc9369_a1_keys() {
    check_keys(Protection::V2, &V2_KEYS);
}

/// The sample, mask and protected header of appendix A.2 and A.3.
#[test]
fn header_protection_masks() {
    for (keys, sample, mask) in [
        (
            V1_KEYS.client_keys,
            "d1b1c98dd7689fb8ec11d242b123dc9b",
            "437b9aec36",
        ),
        (
            V1_KEYS.server_keys,
            "2cd0991cd25b0aac406a5816b6394100",
            "2ec0d8356a",
        ),
        (
            V2_KEYS.client_keys,
            "ffe67b6abcdb4298b485dd04de806071",
            "94a0c95e80",
        ),
        (
            V2_KEYS.server_keys,
            "6f05d8a4398c47089698baeea26b91eb",
            "4dd92e91ea",
        ),
    ] {
        let opener = Opener::new(&keys_of(keys));
        assert_eq!(opener.mask(&arr(sample)), arr::<5>(mask));
    }
}

/// Opens a protected packet with `keys`: the unprotected header and the plaintext.
fn open(keys: [&str; 3], packet: &[u8], pn_offset: usize) -> (u64, Vec<u8>, Vec<u8>) {
    let mut scratch = Vec::new();
    let (pn, range) = Opener::new(&keys_of(keys))
        .open(packet, pn_offset, None, &mut scratch)
        .expect("the packet opens");
    (pn, scratch[..range.start].to_vec(), scratch[range].to_vec())
}

fn check_client_initial(keys: &KeyVectors, packet: &str, header: &str, crypto: &str) {
    let packet = hex(packet);
    assert_eq!(packet.len(), 1200);
    // First byte, version, DCID (1 + 8), SCID (1 + 0), token (1), length (2).
    let (pn, h, plain) = open(keys.client_keys, &packet, 18);
    assert_eq!(pn, 2);
    assert_eq!(h, hex(header));
    let crypto = hex(crypto);
    assert_eq!(plain.len(), 1162);
    assert_eq!(&plain[..crypto.len()], &crypto[..]);
    assert!(plain[crypto.len()..].iter().all(|&b| b == 0), "PADDING");
}

fn check_server_initial(keys: &KeyVectors, packet: &str, header: &str, payload: &str) {
    // First byte, version, DCID (1 + 0), SCID (1 + 8), token (1), length (2).
    let (pn, h, plain) = open(keys.server_keys, &hex(packet), 18);
    assert_eq!(pn, 1);
    assert_eq!(h, hex(header));
    assert_eq!(plain, hex(payload));
}

#[test]
fn rfc9001_a2_client_initial_opens_to_its_crypto_frame() {
    check_client_initial(
        &V1_KEYS,
        V1_CLIENT_PACKET,
        V1_CLIENT_HEADER,
        V1_CLIENT_CRYPTO,
    );
}

#[test]
fn rfc9001_a3_server_initial_opens_to_its_payload() {
    check_server_initial(
        &V1_KEYS,
        V1_SERVER_PACKET,
        V1_SERVER_HEADER,
        V1_SERVER_PAYLOAD,
    );
}

#[test]
fn rfc9369_a2_client_initial_opens_to_its_crypto_frame() {
    check_client_initial(
        &V2_KEYS,
        V2_CLIENT_PACKET,
        V2_CLIENT_HEADER,
        V2_CLIENT_CRYPTO,
    );
}

#[test]
fn rfc9369_a3_server_initial_opens_to_its_payload() {
    check_server_initial(
        &V2_KEYS,
        V2_SERVER_PACKET,
        V2_SERVER_HEADER,
        V2_SERVER_PAYLOAD,
    );
}

/// The ClientHello of the appendices, through a flow.
fn check_flow(packet: &str, version: u32) {
    let mut flow = QuicFlow::new();
    let mut events = Vec::new();
    flow.on_datagram(UP, 7, &hex(packet), &mut |d| events.push(d));
    let ch = flow.client_hello().expect("the ClientHello");
    assert_eq!(ch.sni.as_deref(), Some("example.com"));
    assert_eq!(ch.alpn, ["alpn"]);
    assert_eq!(ch.supported_versions, [0x0304]);
    assert_eq!(flow.client_hello_ts_ns(), Some(7));
    assert_eq!(flow.version(), Some(version));
    assert_eq!(flow.is_quic(), Some(true));
    assert!(!flow.reading_hello());
    assert_eq!(
        events,
        [QuicDatagram {
            dir: UP,
            ts_ns: 7,
            len: 1200,
            first: PacketForm::Long(LongType::Initial),
            packets: 1,
        }]
    );
    let s = flow.stats();
    assert_eq!(
        (s.initial_packets, s.initials_opened, s.crypto_frames),
        (1, 1, 1)
    );
    assert_eq!((s.client_hellos, s.bad_frames, s.trailing_bytes), (1, 0, 0));
}

#[test]
fn rfc9001_client_initial_through_a_flow() {
    check_flow(V1_CLIENT_PACKET, VERSION_1);
}

#[test]
fn rfc9369_client_initial_through_a_flow() {
    check_flow(V2_CLIENT_PACKET, VERSION_2);
}

#[test]
fn a_server_initial_is_counted_not_opened() {
    let mut flow = QuicFlow::new();
    flow.on_datagram(UP, 0, &hex(V1_CLIENT_PACKET), &mut |_| {});
    let mut events = Vec::new();
    flow.on_datagram(DOWN, 1, &hex(V1_SERVER_PACKET), &mut |d| events.push(d));
    assert_eq!(events[0].first, PacketForm::Long(LongType::Initial));
    assert_eq!(flow.stats().initial_packets, 2);
    assert_eq!(flow.dir_stats(DOWN).long_packets, 1);
}

#[test]
fn rfc9000_a3_packet_number_decoding() {
    assert_eq!(
        decode_packet_number(Some(0xa82f30ea), 0x9b32, 16),
        0xa82f9b32
    );
    assert_eq!(decode_packet_number(None, 2, 32), 2);
    assert_eq!(decode_packet_number(Some(0xff), 0x01, 8), 0x101);
    assert_eq!(decode_packet_number(Some(u64::MAX), 0xff, 8), (1 << 62) - 1);
}

#[test]
fn version_names() {
    assert_eq!(version_name(VERSION_1), "v1");
    assert_eq!(version_name(VERSION_2), "v2");
    assert_eq!(version_name(0xff00_001d), "draft-29");
    assert_eq!(version_name(0xface_b00e), "mvfst-0xfaceb00e");
    assert_eq!(version_name(u32::from_be_bytes(*b"Q046")), "Q046");
    assert_eq!(version_name(u32::from_be_bytes(*b"T051")), "T051");
    assert_eq!(version_name(0x1a2a_3a4a), "reserved-0x1a2a3a4a");
    assert_eq!(version_name(0), "negotiation");
    assert_eq!(version_name(0x1234_5678), "0x12345678");
    assert_eq!(VersionKind::of(0xff00_0020), VersionKind::Draft(32));
}

// Packets sealed here (RFC 9001 sections 5.3 and 5.4, RFC 9000 section 17.2.2).

/// A protected long header packet: version 1 or 2, type, connection IDs, packet number
/// (2 bytes), `payload` sealed with `keys`.
fn seal(version: u32, ty: LongType, keys: &Keys, dcid: &[u8], pn: u16, payload: &[u8]) -> Vec<u8> {
    let bits = match (version == VERSION_2, ty) {
        (false, LongType::Initial) | (true, LongType::Retry) => 0,
        (false, LongType::ZeroRtt) | (true, LongType::Initial) => 1,
        (false, LongType::Handshake) | (true, LongType::ZeroRtt) => 2,
        _ => 3,
    };
    let mut p = vec![0xc0 | bits << 4 | 0x01]; // 2-byte packet number
    p.extend_from_slice(&version.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.extend_from_slice(&[4, 0xaa, 0xbb, 0xcc, 0xdd]); // SCID
    if ty == LongType::Initial {
        p.push(0); // no token
    }
    let len = 2 + payload.len() + 16;
    p.extend_from_slice(&(0x4000 | len as u16).to_be_bytes());
    let pn_offset = p.len();
    p.extend_from_slice(&pn.to_be_bytes());
    let mut nonce = keys.iv;
    for (n, b) in nonce[4..].iter_mut().zip(u64::from(pn).to_be_bytes()) {
        *n ^= b;
    }
    let mut body = payload.to_vec();
    let tag = Aes128Gcm::new(&keys.key.into())
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &p, &mut body)
        .unwrap();
    p.extend_from_slice(&body);
    p.extend_from_slice(&tag);
    let sample: [u8; 16] = p[pn_offset + 4..pn_offset + 20].try_into().unwrap();
    let mask = Opener::new(keys).mask(&sample);
    p[0] ^= mask[0] & 0x0f;
    p[pn_offset] ^= mask[1];
    p[pn_offset + 1] ^= mask[2];
    p
}

fn crypto_frame(offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06];
    f.extend_from_slice(&(0x4000 | offset as u16).to_be_bytes());
    f.extend_from_slice(&(0x4000 | data.len() as u16).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// A ClientHello of about `pad` + 100 bytes naming `sni`.
fn big_client_hello(sni: &str, pad: usize) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&[7; 32]);
    b.extend_from_slice(&[0, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00]);
    let mut exts = Vec::new();
    let name = sni.as_bytes();
    exts.extend_from_slice(&[0x00, 0x00]);
    exts.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
    exts.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    exts.push(0);
    exts.extend_from_slice(&(name.len() as u16).to_be_bytes());
    exts.extend_from_slice(name);
    exts.extend_from_slice(&[0x00, 0x15]);
    exts.extend_from_slice(&(pad as u16).to_be_bytes());
    exts.resize(exts.len() + pad, 0);
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(&exts);
    let mut m = vec![1, 0, (b.len() >> 8) as u8, b.len() as u8];
    m.extend_from_slice(&b);
    m
}

#[test]
fn a_client_hello_over_three_initials_in_two_datagrams_out_of_order() {
    for version in [VERSION_1, VERSION_2] {
        let p = if version == VERSION_1 {
            Protection::V1
        } else {
            Protection::V2
        };
        let dcid = [9u8; 8];
        let keys = Keys::client_initial(p, &dcid);
        let hello = big_client_hello("pq.example.net", 2500);
        let (a, rest) = hello.split_at(1100);
        let (b, c) = rest.split_at(1100);
        // Datagram 1: the second piece, then the first, coalesced.
        let mut d1 = seal(
            version,
            LongType::Initial,
            &keys,
            &dcid,
            1,
            &crypto_frame(1100, b),
        );
        let mut first = crypto_frame(0, a);
        first.insert(0, 0x01); // PING
        d1.extend_from_slice(&seal(version, LongType::Initial, &keys, &dcid, 0, &first));
        // Datagram 2: the third piece with an ACK and PADDING, a 0-RTT packet, zeros.
        let mut third = vec![0x02, 0x00, 0x00, 0x00, 0x00];
        third.extend_from_slice(&crypto_frame(2200, c));
        third.extend_from_slice(&[0; 40]);
        let mut d2 = seal(version, LongType::Initial, &keys, &dcid, 2, &third);
        d2.extend_from_slice(&seal(version, LongType::ZeroRtt, &keys, &dcid, 3, &[1; 50]));
        d2.extend_from_slice(&[0; 30]);

        let mut flow = QuicFlow::new();
        let mut events = Vec::new();
        flow.on_datagram(UP, 1, &d1, &mut |d| events.push(d));
        assert!(flow.client_hello().is_none());
        assert!(flow.reading_hello());
        flow.on_datagram(UP, 2, &d2, &mut |d| events.push(d));
        let ch = flow.client_hello().expect("the ClientHello");
        assert_eq!(ch.sni.as_deref(), Some("pq.example.net"));
        assert_eq!(flow.client_hello_ts_ns(), Some(2));
        assert_eq!(events.iter().map(|e| e.packets).collect::<Vec<_>>(), [2, 2]);
        let s = flow.stats();
        assert_eq!(
            (
                s.initials_opened,
                s.crypto_frames,
                s.ping_frames,
                s.ack_frames
            ),
            (3, 3, 1, 1)
        );
        assert_eq!(
            (s.zero_rtt_packets, s.trailing_bytes, s.bad_frames),
            (1, 1, 0)
        );
    }
}

#[test]
fn later_initials_to_the_server_chosen_id_use_the_first_keys() {
    let dcid = [1u8; 8];
    let keys = Keys::client_initial(Protection::V1, &dcid);
    let hello = big_client_hello("a.example", 1500);
    let (a, b) = hello.split_at(1000);
    let mut flow = QuicFlow::new();
    let d1 = seal(
        VERSION_1,
        LongType::Initial,
        &keys,
        &dcid,
        0,
        &crypto_frame(0, a),
    );
    flow.on_datagram(UP, 1, &d1, &mut |_| {});
    let d2 = seal(
        VERSION_1,
        LongType::Initial,
        &keys,
        &[5; 4],
        1,
        &crypto_frame(1000, b),
    );
    flow.on_datagram(UP, 2, &d2, &mut |_| {});
    assert_eq!(
        flow.client_hello().and_then(|c| c.sni.as_deref()),
        Some("a.example")
    );
    assert_eq!(flow.stats().keys_rederived, 0);
}

#[test]
fn after_a_retry_the_keys_come_from_the_new_id() {
    let hello = big_client_hello("retry.example", 1500);
    let first_keys = Keys::client_initial(Protection::V1, &[1; 8]);
    let mut flow = QuicFlow::new();
    let d1 = seal(
        VERSION_1,
        LongType::Initial,
        &first_keys,
        &[1; 8],
        0,
        &crypto_frame(0, &hello[..1000]),
    );
    flow.on_datagram(UP, 1, &d1, &mut |_| {});
    // The server's Retry: type, version, connection IDs, token, integrity tag.
    let mut retry = vec![0xf0];
    retry.extend_from_slice(&VERSION_1.to_be_bytes());
    retry.extend_from_slice(&[0, 8, 2, 2, 2, 2, 2, 2, 2, 2]);
    retry.extend_from_slice(&[0x77; 40]);
    let mut events = Vec::new();
    flow.on_datagram(DOWN, 2, &retry, &mut |d| events.push(d));
    assert_eq!(events[0].first, PacketForm::Long(LongType::Retry));
    let new_keys = Keys::client_initial(Protection::V1, &[2; 8]);
    let mut whole = crypto_frame(0, &hello);
    whole.extend_from_slice(&[0; 100]);
    let d2 = seal(VERSION_1, LongType::Initial, &new_keys, &[2; 8], 1, &whole);
    flow.on_datagram(UP, 3, &d2, &mut |_| {});
    assert_eq!(
        flow.client_hello().and_then(|c| c.sni.as_deref()),
        Some("retry.example")
    );
    let s = flow.stats();
    assert_eq!(
        (s.retry_packets, s.keys_rederived, s.initials_opened),
        (1, 1, 2)
    );
}

#[test]
fn other_versions_are_named_and_counted() {
    for (v, kind, later) in [
        (0xff00_0016u32, VersionKind::Draft(22), PacketForm::Short),
        (0xface_b001, VersionKind::Mvfst, PacketForm::Short),
        // gQUIC with an IETF long header: its short packets are gQUIC's too.
        (
            u32::from_be_bytes(*b"Q050"),
            VersionKind::Gquic,
            PacketForm::Gquic,
        ),
    ] {
        let mut d = vec![0xc3];
        d.extend_from_slice(&v.to_be_bytes());
        d.extend_from_slice(&[8, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
        d.resize(1200, 0x55);
        let mut flow = QuicFlow::new();
        let mut events = Vec::new();
        flow.on_datagram(UP, 0, &d, &mut |e| events.push(e));
        flow.on_datagram(DOWN, 1, &[0x41; 300], &mut |e| events.push(e));
        assert_eq!(flow.version(), Some(v));
        assert_eq!(VersionKind::of(v), kind);
        assert_eq!(flow.is_quic(), Some(true));
        assert!(flow.client_hello().is_none());
        assert_eq!(events[0].first, PacketForm::OtherVersion);
        assert_eq!(events[1].first, later);
        assert_eq!(flow.stats().other_version_packets, 1);
    }
}

#[test]
fn gquic_public_header_and_version_negotiation() {
    // gQUIC Q043: flags 0x09 (version, 8-byte connection ID), CID, "Q043", ...
    let mut d = vec![0x09, 1, 2, 3, 4, 5, 6, 7, 8];
    d.extend_from_slice(b"Q043");
    d.resize(1350, 0);
    let mut flow = QuicFlow::new();
    let mut events = Vec::new();
    flow.on_datagram(UP, 0, &d, &mut |e| events.push(e));
    // The server's packets have no version; they are gQUIC by the flow's.
    flow.on_datagram(DOWN, 1, &[0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9], &mut |e| {
        events.push(e)
    });
    assert_eq!(flow.version(), Some(u32::from_be_bytes(*b"Q043")));
    assert_eq!(events[0].first, PacketForm::Gquic);
    assert_eq!(events[1].first, PacketForm::Gquic);
    assert_eq!(flow.stats().gquic_packets, 2);

    let mut vn = vec![0x80, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
    vn.extend_from_slice(&VERSION_1.to_be_bytes());
    let mut flow = QuicFlow::new();
    let mut events = Vec::new();
    flow.on_datagram(DOWN, 0, &vn, &mut |e| events.push(e));
    assert_eq!(events[0].first, PacketForm::VersionNegotiation);
    assert_eq!(flow.version(), None);
    assert_eq!(flow.stats().version_negotiation_packets, 1);
}

#[test]
fn not_quic_is_given_up_after_a_few_datagrams() {
    let mut flow = QuicFlow::new();
    let mut events = Vec::new();
    for i in 0..6 {
        // DNS-like datagrams.
        flow.on_datagram(UP, i, &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0], &mut |e| {
            events.push(e)
        });
    }
    assert_eq!(flow.is_quic(), Some(false));
    assert!(!flow.reading_hello());
    assert!(events.iter().all(|e| e.first == PacketForm::NotQuic));
    assert_eq!(flow.dir_stats(UP).datagrams, 6);
    assert_eq!(flow.stats().not_quic, 1);
}

#[test]
fn a_truncated_initial_is_counted_and_the_hello_left_incomplete() {
    let packet = hex(V1_CLIENT_PACKET);
    let mut flow = QuicFlow::new();
    let mut events = Vec::new();
    flow.on_datagram(UP, 0, &packet[..600], &mut |e| events.push(e));
    assert_eq!(events[0].first, PacketForm::NotQuic);
    assert_eq!(flow.stats().truncated_packets, 1);
    assert!(flow.client_hello().is_none());
    flow.finish(1);
    assert_eq!(flow.stats().hello_incomplete, 0);
}

#[test]
fn a_corrupt_initial_does_not_open() {
    let mut packet = hex(V1_CLIENT_PACKET);
    packet[500] ^= 1;
    let mut flow = QuicFlow::new();
    flow.on_datagram(UP, 0, &packet, &mut |_| {});
    assert!(flow.client_hello().is_none());
    assert_eq!(flow.stats().initials_not_opened, 1);
    assert!(flow.reading_hello());
}

#[test]
fn the_search_for_a_hello_is_bounded() {
    let dcid = [3u8; 8];
    let keys = Keys::client_initial(Protection::V1, &dcid);
    let mut flow = QuicFlow::new();
    for pn in 0..40u16 {
        let d = seal(
            VERSION_1,
            LongType::Initial,
            &keys,
            &dcid,
            pn,
            &[0x01; 1100],
        );
        flow.on_datagram(UP, i64::from(pn), &d, &mut |_| {});
    }
    assert!(!flow.reading_hello());
    let s = flow.stats();
    assert_eq!(
        (s.hello_not_found, s.initials_opened, s.initial_packets),
        (1, 16, 40)
    );
    // CRYPTO data past the bound.
    let mut flow = QuicFlow::new();
    let mut far = vec![0x06, 0x80, 0x01, 0x00, 0x00, 0x05];
    far.extend_from_slice(&[1; 5]);
    far.resize(1100, 0);
    flow.on_datagram(
        UP,
        0,
        &seal(VERSION_1, LongType::Initial, &keys, &dcid, 0, &far),
        &mut |_| {},
    );
    assert_eq!(flow.stats().crypto_overflow, 1);
    assert!(!flow.reading_hello());
}

proptest! {
    #[test]
    fn arbitrary_datagrams_never_panic(
        datagrams in prop::collection::vec(
            (any::<bool>(), prop::collection::vec(any::<u8>(), 0..1400)),
            0..12,
        ),
    ) {
        let mut flow = QuicFlow::new();
        let mut n = 0;
        for (i, (up, d)) in datagrams.iter().enumerate() {
            let dir = if *up { UP } else { DOWN };
            flow.on_datagram(dir, i as i64, d, &mut |_| n += 1);
        }
        flow.finish(100);
        prop_assert_eq!(n, datagrams.len());
    }

    #[test]
    fn arbitrary_bytes_after_a_long_header_never_panic(
        version in prop::sample::select(vec![VERSION_1, VERSION_2, 0, 0xff00_001d, 0x5130_3530]),
        first in any::<u8>(),
        tail in prop::collection::vec(any::<u8>(), 0..1300),
    ) {
        let mut d = vec![first | 0x80];
        d.extend_from_slice(&version.to_be_bytes());
        d.extend_from_slice(&tail);
        let mut flow = QuicFlow::new();
        flow.on_datagram(UP, 0, &d, &mut |_| {});
        flow.on_datagram(UP, 1, &d, &mut |_| {});
    }

    #[test]
    fn corrupted_rfc_packets_never_panic(at in 0usize..1200, x in 1u8..=255, cut in 0usize..1300) {
        for packet in [V1_CLIENT_PACKET, V2_CLIENT_PACKET] {
            let mut p = hex(packet);
            p[at] ^= x;
            p.truncate(cut);
            let mut flow = QuicFlow::new();
            flow.on_datagram(UP, 0, &p, &mut |_| {});
        }
    }

    #[test]
    fn crypto_frames_in_any_order_and_size_give_the_hello(
        cuts in prop::collection::vec(1usize..2571, 0..6),
        order in any::<u64>(),
    ) {
        let dcid = [4u8; 8];
        let keys = Keys::client_initial(Protection::V1, &dcid);
        let hello = big_client_hello("any.example", 2500);
        assert_eq!(hello.len(), 2571);
        let mut cuts = cuts;
        cuts.push(0);
        cuts.push(hello.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        // A permutation from `order`, each piece sent twice.
        let n = pieces.len();
        for i in 0..n {
            pieces.swap(i, (order as usize).wrapping_add(i * 7) % n);
        }
        let pieces: Vec<(usize, usize)> = pieces.iter().chain(pieces.iter()).copied().collect();
        let mut flow = QuicFlow::new();
        for (pn, (s, e)) in pieces.iter().enumerate() {
            let frames = crypto_frame(*s, &hello[*s..*e]);
            let d = seal(VERSION_1, LongType::Initial, &keys, &dcid, pn as u16, &frames);
            flow.on_datagram(UP, pn as i64, &d, &mut |_| {});
        }
        prop_assert_eq!(flow.client_hello().and_then(|c| c.sni.as_deref()), Some("any.example"));
    }
}

/// The inline sizes the module documentations state, as upper bounds.
#[test]
fn inline_sizes_stay_as_documented() {
    assert!(std::mem::size_of::<QuicFlow>() <= 432);
    assert!(std::mem::size_of::<crate::tls::TlsFlow>() <= 704);
}

/// A client's first datagram: padded to 1,200 bytes, an Initial of a version that is
/// named; reserved and unknown versions, other packet types and short datagrams are not.
#[test]
fn client_first_datagrams_by_version() {
    let long = |first: u8, version: u32| {
        let mut d = vec![0u8; 1200];
        d[0] = first;
        d[1..5].copy_from_slice(&version.to_be_bytes());
        d
    };
    let first = |d: &[u8]| client_first_version(d, d.len());
    assert_eq!(first(&long(0xc3, VERSION_1)), Some(VERSION_1));
    // Version 2's Initial is type 0b01; its 0b00 is a Retry.
    assert_eq!(first(&long(0xd3, VERSION_2)), Some(VERSION_2));
    assert_eq!(first(&long(0xc3, VERSION_2)), None);
    // A Handshake packet does not open a connection.
    assert_eq!(first(&long(0xe3, VERSION_1)), None);
    assert_eq!(first(&long(0xc3, 0xff00_001d)), Some(0xff00_001d));
    assert_eq!(first(&long(0xc3, 0xface_b00e)), Some(0xface_b00e));
    assert_eq!(
        first(&long(0xc3, u32::from_be_bytes(*b"Q050"))),
        Some(0x5130_3530)
    );
    assert_eq!(first(&long(0xc3, 0x1a2a_3a4a)), None, "reserved");
    assert_eq!(first(&long(0xc3, 0x1234_5678)), None, "unknown");
    assert_eq!(first(&long(0x83, VERSION_1)), None, "fixed bit clear");
    // gQUIC up to Q043: public header with the version flag and an 8-byte CID.
    let mut g = vec![0u8; 1350];
    g[0] = 0x09;
    g[9..13].copy_from_slice(b"Q035");
    assert_eq!(first(&g), Some(u32::from_be_bytes(*b"Q035")));
    g[0] = 0x01;
    assert_eq!(first(&g), None, "no connection ID");
    // Too short to be a client's first datagram, unless a snap length cut it.
    let v1 = long(0xc3, VERSION_1);
    assert_eq!(client_first_version(&v1[..1199], 1199), None);
    assert_eq!(client_first_version(&v1[..256], 1208), Some(VERSION_1));
    assert_eq!(client_first_version(&v1[..4], 1208), None);
}

/// The drafts and mvfst versions opened like version 1, with their own salts: drafts 23
/// to 28 and mvfst 0xfaceb002 / 0xfaceb00e the draft-23 salt, drafts 29 to 32 the
/// draft-29 salt, drafts 33 and 34 version 1's. Sealed with another salt, nothing opens.
#[test]
fn drafts_and_mvfst_initials_open_with_their_salts() {
    let dcid = [7u8; 8];
    for (version, p) in [
        (0xff00_0017u32, Protection::Draft23),
        (0xff00_001b, Protection::Draft23),
        (0xface_b002, Protection::Draft23),
        (0xface_b00e, Protection::Draft23),
        (0xff00_001d, Protection::Draft29),
        (0xff00_0020, Protection::Draft29),
        (0xff00_0022, Protection::V1),
    ] {
        let hello = big_client_hello("draft.example", 600);
        let keys = Keys::client_initial(p, &dcid);
        let d = seal(
            version,
            LongType::Initial,
            &keys,
            &dcid,
            0,
            &crypto_frame(0, &hello),
        );
        let mut flow = QuicFlow::new();
        flow.on_datagram(UP, 0, &d, &mut |_| {});
        assert_eq!(
            flow.client_hello().and_then(|c| c.sni.as_deref()),
            Some("draft.example"),
            "{version:#x}"
        );
        assert_eq!(flow.stats().initials_opened, 1, "{version:#x}");
        // The same Initial sealed with version 1's keys does not open.
        let wrong = Keys::client_initial(
            if p == Protection::V1 {
                Protection::Draft29
            } else {
                Protection::V1
            },
            &dcid,
        );
        let d = seal(
            version,
            LongType::Initial,
            &wrong,
            &dcid,
            0,
            &crypto_frame(0, &hello),
        );
        let mut flow = QuicFlow::new();
        flow.on_datagram(UP, 0, &d, &mut |_| {});
        assert!(flow.client_hello().is_none(), "{version:#x}");
        assert_eq!(flow.stats().initials_not_opened, 1, "{version:#x}");
    }
}
