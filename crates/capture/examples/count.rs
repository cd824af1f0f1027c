//! Counts the records of a capture and times the read: `count FILE [mmap|read]`.
//!
//! Used to compare the two read modes against `cat FILE > /dev/null`.

use std::path::Path;
use std::time::Instant;

use streamscope_capture::{Capture, ReadMode};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: count FILE [mmap|read]");
        std::process::exit(2);
    };
    let mode = match args.next().as_deref() {
        Some("mmap") => ReadMode::Mmap,
        Some("read") => ReadMode::Read,
        None => ReadMode::default(),
        Some(other) => {
            eprintln!("unknown mode {other}: mmap or read");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let mut cap = match Capture::open_with(Path::new(&path), mode) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let (mut n, mut bytes, mut sum) = (0u64, 0u64, 0u64);
    loop {
        match cap.next_record() {
            Ok(Some(r)) => {
                n += 1;
                bytes += r.data.len() as u64;
                // touch the data as a parser would
                sum = sum.wrapping_add(u64::from(r.data.first().copied().unwrap_or(0)));
                sum = sum.wrapping_add(u64::from(r.data.last().copied().unwrap_or(0)));
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("warning: {e}");
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let total = cap.offset();
    println!(
        "{mode:?}: {n} records, {bytes} captured bytes, {total} input bytes, {secs:.3} s, {:.0} MB/s (check {sum})",
        total as f64 / secs / 1e6
    );
}
