//! The operating-system memory helpers of streamscope, in one place: pages mapped ahead
//! of their use, by the caller or by a thread of their own, and huge pages.
//!
//! Two parts of the pipeline touch memory faster than page faults map it:
//!
//! * the capture reader walks a memory-mapped file: every few pages of it cost a fault
//!   (a trap and a page-table update) unless they are mapped ahead
//!   (`MADV_POPULATE_READ`, Linux 5.14); on a fast capture that kernel work is a tenth
//!   of the read loop's time;
//! * the flow table fills its slab, whose bound is reserved up front as address space:
//!   each new 4 KiB page costs a fault with a page allocation and zeroing
//!   (`MADV_POPULATE_WRITE` maps them ahead); with a million new flows that is ~40 000
//!   faults and a fifth of the table's time.
//!
//! [`populate`] maps a range at once on the calling thread; an [`AheadThread`] keeps a
//! range mapped up to a distance past a position its owner tells it, on another CPU
//! (a run's thread budget decides whether there is one), and for a file read once front
//! to back unmaps it again behind ([`release_range`]), so that the page-table entries
//! of a large capture are not all taken down at its end, on the reader's CPU; [`huge_pages`] advises memory
//! not yet touched for transparent huge pages, so that a fault maps 2 MiB at once.
//! Every call is a hint: where the kernel refuses (older than 5.14, another system),
//! pages fault in one at a time as they would anyway, and nothing changes what the
//! memory holds.

#![deny(unsafe_op_in_unsafe_fn)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The page size the helpers align to.
pub const PAGE: usize = 4096;
/// The transparent huge page size.
pub const HUGE_PAGE: usize = 2 << 20;

/// How pages are mapped ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Populate {
    /// For reading (a file's pages: read in if not cached, then mapped).
    Read,
    /// For writing (anonymous memory: allocated, zeroed and mapped writable).
    Write,
}

/// Maps the pages inside `[start, start + len)` now, in one call. Returns `false` where
/// the kernel refuses.
///
/// # Safety
///
/// The range must lie inside one live mapping of the caller's (a file map, or an
/// allocation) that stays alive for the call. Populating never changes what the memory
/// holds, so concurrent reads and writes of it by other threads are unaffected.
pub unsafe fn populate_range(start: usize, len: usize, how: Populate) -> bool {
    #[cfg(target_os = "linux")]
    {
        let lo = start.next_multiple_of(PAGE);
        let hi = (start + len) & !(PAGE - 1);
        if hi <= lo {
            return true;
        }
        let advice = match how {
            Populate::Read => libc::MADV_POPULATE_READ,
            Populate::Write => libc::MADV_POPULATE_WRITE,
        };
        // SAFETY: [lo, hi) lies inside the caller's live mapping (this function's
        // contract); MADV_POPULATE_* only maps pages and never changes their contents.
        unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, advice) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (start, len, how);
        false
    }
}

/// Maps every page of `region` for writing now, in one call: for memory the caller is
/// about to fill (touched entry by entry, each page would cost a fault, two where a read
/// comes first: the shared zero page, then a copy on write).
pub fn populate<T>(region: &mut [T]) {
    let start = region.as_mut_ptr() as usize;
    // SAFETY: the range is `region`, which the caller holds mutably for the call.
    unsafe {
        populate_range(start, std::mem::size_of_val(region), Populate::Write);
    }
}

/// Takes the page-table entries of the whole pages inside `[start, start + len)` down
/// (`MADV_DONTNEED`): reading them again maps them again, from the page cache. Returns
/// `false` where the kernel refuses.
///
/// # Safety
///
/// The range must lie inside one live, read-only, shared mapping of a file (what a
/// read-only memory map of a file is): for such a mapping the advice never changes what
/// the memory reads as. (On private or anonymous memory it would discard contents.)
pub unsafe fn release_range(start: usize, len: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        let lo = start.next_multiple_of(PAGE);
        let hi = (start + len) & !(PAGE - 1);
        if hi <= lo {
            return true;
        }
        // SAFETY: [lo, hi) lies inside the caller's live read-only shared file mapping
        // (the contract), whose contents MADV_DONTNEED leaves as they are.
        unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (start, len);
        false
    }
}

/// Advises the whole 2 MiB pages inside `[start, start + len)` for transparent huge
/// pages, before they are first touched.
///
/// # Safety
///
/// As [`populate_range`]: the range lies inside a live mapping of the caller's. The
/// advice only changes how pages will be mapped when first touched, never what the
/// memory holds.
pub unsafe fn huge_pages_range(start: usize, len: usize) {
    #[cfg(target_os = "linux")]
    {
        let lo = start.next_multiple_of(HUGE_PAGE);
        let hi = (start + len) & !(HUGE_PAGE - 1);
        if hi > lo {
            // SAFETY: [lo, hi) lies inside the caller's live mapping (the contract);
            // MADV_HUGEPAGE never changes the memory's contents.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, len);
}

/// [`huge_pages_range`] on the whole of `region`.
pub fn huge_pages<T>(region: &mut [T]) {
    let start = region.as_mut_ptr() as usize;
    // SAFETY: the range is `region`, which the caller holds mutably for the call.
    unsafe { huge_pages_range(start, std::mem::size_of_val(region)) }
}

/// A thread that keeps the pages of a range mapped up to a distance past a position
/// its owner tells it ([`AheadThread::at`]), in steps, parking when it is far enough
/// ahead. It stops at the end of the range, when the kernel refuses, or when dropped
/// (which joins it).
pub struct AheadThread {
    at: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// Where an [`AheadThread`] works, and how.
#[derive(Clone, Copy, Debug)]
pub struct Ahead {
    /// The thread's name.
    pub name: &'static str,
    /// How far past the told position pages are mapped.
    pub distance: usize,
    /// Bytes mapped per call.
    pub step: usize,
    pub how: Populate,
    /// For a file's pages read once, front to back: how far behind the told position
    /// the thread unmaps them again ([`release_range`]), so that their page-table entries
    /// are taken down on its CPU as the owner goes, not all at once when the mapping goes
    /// (on a 1 GB capture that is 262 144 entries, a tenth of a fast run's time).
    /// `None`: pages stay mapped.
    pub release_behind: Option<usize>,
}

impl AheadThread {
    /// Starts a thread mapping `[start, start + len)` ahead of offset 0 (then of each
    /// offset told). `keep` is held by the thread until it ends: what keeps the range
    /// alive, if the caller does not (an `Arc` of a file map, say). `None` where no
    /// thread could be started.
    ///
    /// # Safety
    ///
    /// The range must stay a live mapping of the caller's until the thread has ended:
    /// kept alive by `keep`, or by the caller dropping the `AheadThread` (which joins
    /// it) before the memory goes or moves.
    pub unsafe fn start(
        start: usize,
        len: usize,
        ahead: Ahead,
        keep: Option<Box<dyn Send>>,
    ) -> Option<AheadThread> {
        let at = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (told, quit) = (Arc::clone(&at), Arc::clone(&stop));
        // Whole pages only, as madvise wants them: the partial first and last pages are
        // left to fault in.
        let end = (start + len) & !(PAGE - 1);
        let step = ahead.step.next_multiple_of(PAGE).max(PAGE);
        let handle = std::thread::Builder::new()
            .name(ahead.name.into())
            .spawn(move || {
                let _keep = keep;
                let mut ahead = ahead;
                let mut done = start.next_multiple_of(PAGE);
                let mut released = done;
                let mut populating = true;
                while !quit.load(Ordering::Relaxed) {
                    let pos = start.saturating_add(told.load(Ordering::Relaxed));
                    if let Some(behind) = ahead.release_behind {
                        let upto = pos.saturating_sub(behind).min(end) & !(PAGE - 1);
                        if upto > released {
                            // SAFETY: [released, upto) lies inside the range, a read-only
                            // file mapping (`release_behind`'s use) that the caller keeps
                            // alive until this thread has ended (`start`'s contract).
                            if unsafe { release_range(released, upto - released) } {
                                released = upto;
                            } else {
                                ahead.release_behind = None;
                            }
                        }
                    }
                    // Pages behind the owner are its own to map (it has been there).
                    done = done.max(pos.min(end) & !(PAGE - 1));
                    if populating && done < end {
                        let want = pos.saturating_add(ahead.distance).min(end) & !(PAGE - 1);
                        if done < want {
                            let n = (want - done).min(step);
                            // SAFETY: [done, done + n) lies inside the range, which the
                            // caller keeps alive until this thread has ended (`start`'s
                            // contract).
                            if unsafe { populate_range(done, n, ahead.how) } {
                                done += n;
                            } else {
                                populating = false;
                            }
                            continue;
                        }
                    } else if ahead.release_behind.is_none() || released >= end {
                        return;
                    }
                    std::thread::park();
                }
            })
            .ok()?;
        Some(AheadThread {
            at,
            stop,
            handle: Some(handle),
        })
    }

    /// The owner has reached offset `offset` of the range.
    #[inline]
    pub fn at(&self, offset: usize) {
        self.at.store(offset, Ordering::Relaxed);
        if let Some(h) = &self.handle {
            h.thread().unpark();
        }
    }
}

impl Drop for AheadThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A fresh private anonymous mapping of `len` bytes (no page touched yet).
    struct Fresh(usize, usize);

    impl Fresh {
        fn new(len: usize) -> Fresh {
            // SAFETY: a new anonymous mapping; unmapped on drop.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            Fresh(p as usize, len)
        }

        /// Resident pages of `[at, at + len)` of the mapping.
        fn resident(&self, at: usize, len: usize) -> usize {
            let mut v = vec![0u8; len / PAGE];
            // SAFETY: the range is inside the mapping; one byte per page in `v`.
            let r =
                unsafe { libc::mincore((self.0 + at) as *mut libc::c_void, len, v.as_mut_ptr()) };
            assert_eq!(r, 0);
            v.iter().filter(|&&b| b & 1 == 1).count()
        }
    }

    impl Drop for Fresh {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`.
            unsafe { libc::munmap(self.0 as *mut libc::c_void, self.1) };
        }
    }

    #[test]
    fn a_thread_maps_pages_up_to_its_distance_past_the_told_offset() {
        let m = Fresh::new(64 << 20);
        // SAFETY: the mapping outlives the thread (dropped first, below).
        let probe = unsafe { populate_range(m.0, PAGE, Populate::Write) };
        if !probe {
            streamscope_testkit::skip(
                "memory::a_thread_maps_pages_up_to_its_distance_past_the_told_offset",
                "pages populated ahead by a thread",
                "this kernel refuses MADV_POPULATE_WRITE (Linux 5.14 and later)",
            );
            return;
        }
        let ahead = Ahead {
            name: "test-ahead",
            distance: 8 << 20,
            step: 1 << 20,
            how: Populate::Write,
            release_behind: None,
        };
        // SAFETY: the mapping outlives the thread, which is dropped (joined) first.
        let t = unsafe { AheadThread::start(m.0, m.1, ahead, None) }.expect("thread");
        let wait = |at: usize, len: usize| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while m.resident(at, len) < len / PAGE && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            m.resident(at, len)
        };
        assert_eq!(wait(0, 8 << 20), (8 << 20) / PAGE, "the first 8 MiB");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            m.resident(16 << 20, 16 << 20),
            0,
            "nothing past the distance"
        );
        t.at(20 << 20);
        assert_eq!(
            wait(20 << 20, 8 << 20),
            (8 << 20) / PAGE,
            "up to 28 MiB once told 20"
        );
        drop(t);
    }
    #[test]
    fn a_thread_releases_pages_past_its_distance_behind_the_told_offset() {
        let m = Fresh::new(64 << 20);
        // SAFETY: the whole mapping, alive for the call.
        if !unsafe { populate_range(m.0, m.1, Populate::Write) } {
            streamscope_testkit::skip(
                "memory::a_thread_releases_pages_past_its_distance_behind_the_told_offset",
                "pages released behind a thread's owner",
                "this kernel refuses MADV_POPULATE_WRITE (Linux 5.14 and later)",
            );
            return;
        }
        assert_eq!(
            m.resident(0, 64 << 20),
            (64 << 20) / PAGE,
            "all mapped first"
        );
        let ahead = Ahead {
            name: "test-release",
            distance: 8 << 20,
            step: 1 << 20,
            how: Populate::Read,
            release_behind: Some(8 << 20),
        };
        // SAFETY: the mapping outlives the thread, which is dropped (joined) first.
        // It is private anonymous memory, not a file's: released pages read as zeros
        // again, which they were, and nothing reads them.
        let t = unsafe { AheadThread::start(m.0, m.1, ahead, None) }.expect("thread");
        let wait_released = |len: usize| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while m.resident(0, len) > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            m.resident(0, len)
        };
        t.at(40 << 20);
        assert_eq!(wait_released(32 << 20), 0, "the 32 MiB before 40 - 8");
        assert_eq!(
            m.resident(32 << 20, 32 << 20),
            (32 << 20) / PAGE,
            "nothing within 8 MiB behind the told offset, nor after it"
        );
        drop(t);
    }
}
