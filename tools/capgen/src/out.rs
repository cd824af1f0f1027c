//! Capture writers: classic pcap (µs or ns magic) and pcapng (one SHB, one IDB, EPBs).
//!
//! pcap: <https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html>;
//! pcapng: draft-ietf-opsawg-pcapng §4.1 (SHB), §4.2 (IDB, `if_tsresol`), §4.3 (EPB).

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::scenario::TsResolution;

/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u16 = 1;

/// Output container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Pcap,
    Pcapng,
}

/// Writes records to `W` in the chosen container.
pub struct CaptureWriter<W: Write> {
    w: W,
    format: Format,
    res: TsResolution,
    bytes: u64,
}

const PCAP_MAGIC_US: u32 = 0xA1B2_C3D4;
const PCAP_MAGIC_NS: u32 = 0xA1B2_3C4D;
const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 0x0000_0001;
const PCAPNG_EPB: u32 = 0x0000_0006;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;
const OPT_ENDOFOPT: u16 = 0;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_TSRESOL: u16 = 9;

impl<W: Write> CaptureWriter<W> {
    /// Writes the file header.
    pub fn new(mut w: W, format: Format, res: TsResolution, snaplen: u32) -> io::Result<Self> {
        let mut bytes = 0u64;
        match format {
            Format::Pcap => {
                let magic = if res == TsResolution::Ns {
                    PCAP_MAGIC_NS
                } else {
                    PCAP_MAGIC_US
                };
                let mut h = [0u8; 24];
                h[0..4].copy_from_slice(&magic.to_le_bytes());
                h[4..6].copy_from_slice(&2u16.to_le_bytes());
                h[6..8].copy_from_slice(&4u16.to_le_bytes());
                h[16..20].copy_from_slice(&snaplen.to_le_bytes());
                h[20..24].copy_from_slice(&(LINKTYPE_ETHERNET as u32).to_le_bytes());
                w.write_all(&h)?;
                bytes += 24;
            }
            Format::Pcapng => {
                let appl = b"capgen";
                let appl_pad = (appl.len() + 3) & !3;
                let shb_len = 24 + 4 + appl_pad + 4 + 4;
                let mut b = Vec::with_capacity(shb_len);
                b.extend_from_slice(&PCAPNG_SHB.to_le_bytes());
                b.extend_from_slice(&(shb_len as u32).to_le_bytes());
                b.extend_from_slice(&PCAPNG_BOM.to_le_bytes());
                b.extend_from_slice(&1u16.to_le_bytes());
                b.extend_from_slice(&0u16.to_le_bytes());
                b.extend_from_slice(&u64::MAX.to_le_bytes());
                b.extend_from_slice(&OPT_SHB_USERAPPL.to_le_bytes());
                b.extend_from_slice(&(appl.len() as u16).to_le_bytes());
                b.extend_from_slice(appl);
                b.resize(b.len() + appl_pad - appl.len(), 0);
                b.extend_from_slice(&OPT_ENDOFOPT.to_le_bytes());
                b.extend_from_slice(&0u16.to_le_bytes());
                b.extend_from_slice(&(shb_len as u32).to_le_bytes());
                let idb_len = 16 + 8 + 4 + 4;
                b.extend_from_slice(&PCAPNG_IDB.to_le_bytes());
                b.extend_from_slice(&(idb_len as u32).to_le_bytes());
                b.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
                b.extend_from_slice(&0u16.to_le_bytes());
                b.extend_from_slice(&snaplen.to_le_bytes());
                b.extend_from_slice(&OPT_IF_TSRESOL.to_le_bytes());
                b.extend_from_slice(&1u16.to_le_bytes());
                b.extend_from_slice(&[if res == TsResolution::Ns { 9 } else { 6 }, 0, 0, 0]);
                b.extend_from_slice(&OPT_ENDOFOPT.to_le_bytes());
                b.extend_from_slice(&0u16.to_le_bytes());
                b.extend_from_slice(&(idb_len as u32).to_le_bytes());
                w.write_all(&b)?;
                bytes += b.len() as u64;
            }
        }
        Ok(CaptureWriter {
            w,
            format,
            res,
            bytes,
        })
    }

    /// Writes one Ethernet frame captured at `ts_ns` (Unix ns; truncated to µs when the
    /// resolution is µs).
    #[inline]
    pub fn write(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let len = frame.len() as u32;
        match self.format {
            Format::Pcap => {
                let sec = ts_ns / 1_000_000_000;
                let frac = ts_ns % 1_000_000_000;
                let frac = if self.res == TsResolution::Ns {
                    frac
                } else {
                    frac / 1000
                };
                let mut h = [0u8; 16];
                h[0..4].copy_from_slice(&(sec as u32).to_le_bytes());
                h[4..8].copy_from_slice(&(frac as u32).to_le_bytes());
                h[8..12].copy_from_slice(&len.to_le_bytes());
                h[12..16].copy_from_slice(&len.to_le_bytes());
                self.w.write_all(&h)?;
                self.w.write_all(frame)?;
                self.bytes += 16 + frame.len() as u64;
            }
            Format::Pcapng => {
                let units = if self.res == TsResolution::Ns {
                    ts_ns
                } else {
                    ts_ns / 1000
                };
                let pad = (4 - frame.len() % 4) % 4;
                let total = (32 + frame.len() + pad) as u32;
                let mut h = [0u8; 28];
                h[0..4].copy_from_slice(&PCAPNG_EPB.to_le_bytes());
                h[4..8].copy_from_slice(&total.to_le_bytes());
                h[12..16].copy_from_slice(&((units >> 32) as u32).to_le_bytes());
                h[16..20].copy_from_slice(&(units as u32).to_le_bytes());
                h[20..24].copy_from_slice(&len.to_le_bytes());
                h[24..28].copy_from_slice(&len.to_le_bytes());
                self.w.write_all(&h)?;
                self.w.write_all(frame)?;
                self.w.write_all(&[0u8; 3][..pad])?;
                self.w.write_all(&total.to_le_bytes())?;
                self.bytes += total as u64;
            }
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}
