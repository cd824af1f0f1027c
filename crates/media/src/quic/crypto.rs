//! Initial packet protection (RFC 9001 section 5; RFC 9369 section 3.3 for version 2):
//! keys from the client's first Destination Connection ID, header protection removed
//! with AES-128-ECB over a sample of the ciphertext, the payload opened with
//! AES-128-GCM.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

/// initial_salt of QUIC version 1 (RFC 9001 section 5.2).
pub(crate) const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// initial_salt of QUIC version 2 (RFC 9369 section 3.3.1).
pub(crate) const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

/// initial_salt of IETF drafts 23 to 28 (draft-ietf-quic-tls-23 section 5.2), which
/// Meta's mvfst 0xfaceb002 and 0xfaceb00e use too.
pub(crate) const SALT_DRAFT_23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];
/// initial_salt of IETF drafts 29 to 32 (draft-ietf-quic-tls-29 section 5.2).
pub(crate) const SALT_DRAFT_29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];

/// Length of the AEAD tag and of the header protection sample (RFC 9001 sections 5.3
/// and 5.4.2).
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const SAMPLE_LEN: usize = 16;

/// A version whose Initial packets are decrypted here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protection {
    /// QUIC version 1 (RFC 9001).
    V1,
    /// QUIC version 2 (RFC 9369).
    V2,
    /// IETF drafts 23 to 28 and mvfst's draft-27 versions: version 1's labels and packet
    /// types, the draft-23 salt.
    Draft23,
    /// IETF drafts 29 to 32: version 1's labels and packet types, the draft-29 salt.
    Draft29,
}

impl Protection {
    fn salt(self) -> &'static [u8; 20] {
        match self {
            Protection::V1 => &SALT_V1,
            Protection::V2 => &SALT_V2,
            Protection::Draft23 => &SALT_DRAFT_23,
            Protection::Draft29 => &SALT_DRAFT_29,
        }
    }

    /// HKDF labels for the packet key, IV and header protection key (RFC 9001 section
    /// 5.1, RFC 9369 section 3.3.2).
    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Protection::V1 | Protection::Draft23 | Protection::Draft29 => {
                [b"quic key", b"quic iv", b"quic hp"]
            }
            Protection::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
        }
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 section 7.1): the HkdfLabel
/// structure is the output length (16 bits), the label with "tls13 " before it (8-bit
/// length) and an empty context (8-bit length 0). Labels here are at most 12 bytes.
fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) {
    const PREFIX: &[u8] = b"tls13 ";
    let mut info = [0u8; 2 + 1 + 6 + 12 + 1];
    let label = &label[..label.len().min(12)];
    let n = 2 + 1 + PREFIX.len() + label.len() + 1;
    info[..2].copy_from_slice(&(out.len() as u16).to_be_bytes());
    info[2] = (PREFIX.len() + label.len()) as u8;
    info[3..3 + PREFIX.len()].copy_from_slice(PREFIX);
    info[3 + PREFIX.len()..n - 1].copy_from_slice(label);
    // expand fails only for outputs longer than 255 hash lengths; these are 12 to 32
    // bytes.
    let _ = prk.expand(&info[..n], out);
}

/// The initial secret and the client and server Initial secrets for a Destination
/// Connection ID (RFC 9001 section 5.2).
pub(crate) fn initial_secrets(p: Protection, dcid: &[u8]) -> ([u8; 32], [u8; 32], [u8; 32]) {
    let (initial, hk) = Hkdf::<Sha256>::extract(Some(p.salt()), dcid);
    let mut client = [0u8; 32];
    let mut server = [0u8; 32];
    expand_label(&hk, b"client in", &mut client);
    expand_label(&hk, b"server in", &mut server);
    (initial.into(), client, server)
}

/// The keys of one direction of the Initial packet number space (RFC 9001 section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Keys {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

impl Keys {
    /// The packet protection key, IV and header protection key from a secret.
    pub(crate) fn from_secret(p: Protection, secret: &[u8; 32]) -> Keys {
        let mut k = Keys {
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
        };
        if let Ok(hk) = Hkdf::<Sha256>::from_prk(secret) {
            let [key, iv, hp] = p.labels();
            expand_label(&hk, key, &mut k.key);
            expand_label(&hk, iv, &mut k.iv);
            expand_label(&hk, hp, &mut k.hp);
        }
        k
    }

    /// The client's Initial keys for a Destination Connection ID.
    pub(crate) fn client_initial(p: Protection, dcid: &[u8]) -> Keys {
        Keys::from_secret(p, &initial_secrets(p, dcid).1)
    }
}

/// Why a protected packet was not opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Too short for the header protection sample or the tag.
    TooShort,
    /// The AEAD tag did not verify: other keys, or a corrupt packet.
    Auth,
}

/// Ready-to-use Initial keys of one direction.
pub(crate) struct Opener {
    aead: Aes128Gcm,
    hp: Aes128,
    iv: [u8; 12],
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener")
    }
}

impl Opener {
    pub(crate) fn new(k: &Keys) -> Opener {
        Opener {
            aead: Aes128Gcm::new(&k.key.into()),
            hp: Aes128::new(&k.hp.into()),
            iv: k.iv,
        }
    }

    /// The header protection mask for a sample (RFC 9001 section 5.4.3).
    pub(crate) fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; 5] {
        let mut block = (*sample).into();
        self.hp.encrypt_block(&mut block);
        let mut m = [0u8; 5];
        m.copy_from_slice(&block[..5]);
        m
    }

    /// Opens a long header packet: `pkt` is the packet (its header from the first byte,
    /// through the end given by its Length field), `pn_offset` where its packet number
    /// starts, `largest` the largest packet number opened before in this space. The
    /// packet is copied into `scratch`, its header protection removed (RFC 9001 section
    /// 5.4.1) and its payload decrypted (section 5.3); returns the full packet number
    /// and the range of the plaintext in `scratch`.
    pub(crate) fn open(
        &self,
        pkt: &[u8],
        pn_offset: usize,
        largest: Option<u64>,
        scratch: &mut Vec<u8>,
    ) -> Result<(u64, std::ops::Range<usize>), OpenError> {
        let sample_at = pn_offset + 4;
        let sample: &[u8; SAMPLE_LEN] = pkt
            .get(sample_at..sample_at + SAMPLE_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(OpenError::TooShort)?;
        let mask = self.mask(sample);
        scratch.clear();
        scratch.extend_from_slice(pkt);
        scratch[0] ^= mask[0] & 0x0f;
        let pn_len = usize::from(scratch[0] & 0x03) + 1;
        let mut truncated = 0u64;
        for i in 0..pn_len {
            scratch[pn_offset + i] ^= mask[1 + i];
            truncated = truncated << 8 | u64::from(scratch[pn_offset + i]);
        }
        let pn = decode_packet_number(largest, truncated, 8 * pn_len as u32);
        let header_len = pn_offset + pn_len;
        if scratch.len() < header_len + TAG_LEN {
            return Err(OpenError::TooShort);
        }
        let end = scratch.len() - TAG_LEN;
        let mut nonce = self.iv;
        for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= p;
        }
        let (aad, body) = scratch.split_at_mut(header_len);
        let (payload, tag) = body.split_at_mut(end - header_len);
        self.aead
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                aad,
                payload,
                Tag::from_slice(tag),
            )
            .map_err(|_| OpenError::Auth)?;
        Ok((pn, header_len..end))
    }
}

/// The full packet number from its truncated encoding (RFC 9000 appendix A.3).
pub(crate) fn decode_packet_number(largest: Option<u64>, truncated: u64, bits: u32) -> u64 {
    const MAX: u64 = (1 << 62) - 1;
    let expected = largest.map_or(0, |l| l.saturating_add(1)).min(MAX);
    let win = 1u64 << bits;
    let hwin = win / 2;
    let candidate = (expected & !(win - 1)) | truncated;
    if candidate.saturating_add(hwin) <= expected && candidate < (1 << 62) - win {
        candidate + win
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}
