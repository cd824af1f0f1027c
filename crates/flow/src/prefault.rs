//! Faults in the pages of a vector's reserved, still unused capacity ahead of its use,
//! on another CPU.
//!
//! The flow slab's bound is reserved up front as address space; each new 4 KiB page
//! of it then costs the reading thread a page fault (a trap, a page allocation and
//! zeroing). With a million new flows that is ~40 000 faults and a fifth of the flow
//! table's time. A helper thread asks the kernel to populate the next pages
//! (`MADV_POPULATE_WRITE`, Linux 5.14) up to [`AHEAD`] bytes past the vector's length,
//! so the reading thread finds them mapped; those pages count in the process's
//! anonymous memory a little earlier than they would anyway.
//!
//! With one CPU there is nobody to populate ahead; the rest of the capacity is then
//! advised for transparent huge pages (`MADV_HUGEPAGE`) instead, so that a fault maps
//! 2 MiB at once: 512 times fewer faults (measured on a million flows pinned to one CPU:
//! system time −45 %, wall −12 %). With two CPUs the populating thread is the better of
//! the two: huge pages made the reading thread wait on the 2 MiB pages being populated
//! (read loop +5 to +25 % in paired runs). Both are hints: where the kernel refuses,
//! pages fault in one at a time as before.
//!
//! [`populate`] does the same at once, on the calling thread, for memory about to be
//! filled whole (the flow index when it grows, advised for huge pages first with
//! [`huge_pages`]). The system calls and the thread are `streamscope_memory`'s.

pub(crate) use streamscope_memory::{huge_pages, populate};
use streamscope_memory::{Ahead, AheadThread, Populate};

/// How far past the vector's length pages are populated.
const AHEAD: usize = 32 << 20;
/// Bytes populated per call.
const STEP: usize = 2 << 20;

/// The populating thread of one vector's spare capacity; stopped and joined on drop.
pub(crate) struct Prefault {
    inner: Option<AheadThread>,
}

impl Prefault {
    /// No thread.
    pub(crate) fn none() -> Prefault {
        Prefault { inner: None }
    }

    /// Starts populating the spare capacity of `v` on a thread of its own (nothing if
    /// there is too little of it; with a budget of one thread, advises it for huge pages
    /// instead). The caller must [`stop`](Prefault::stop) it before `v` can reallocate
    /// or be freed.
    pub(crate) fn start<T>(v: &Vec<T>, threads: usize) -> Prefault {
        let size = std::mem::size_of::<T>();
        let bytes = v.capacity().saturating_mul(size);
        let base = v.as_ptr() as usize;
        if bytes < 2 * AHEAD {
            return Prefault::none();
        }
        if threads >= 2 {
            let ahead = Ahead {
                name: "prefault",
                distance: AHEAD,
                step: STEP,
                how: Populate::Write,
                release_behind: None,
            };
            // SAFETY: the range is `v`'s allocation, which the owner keeps alive and in
            // place until it has stopped (joined) the thread: `stop` before anything
            // that can reallocate or free `v`, or dropping the `Prefault`.
            let inner = unsafe { AheadThread::start(base, bytes, ahead, None) };
            if inner.is_some() {
                return Prefault { inner };
            }
        }
        let used = v.len() * size;
        // SAFETY: `[base + used, base + bytes)` is `v`'s unused capacity, alive for the
        // call; the advice never changes what the memory holds.
        unsafe { streamscope_memory::huge_pages_range(base + used, bytes - used) };
        Prefault::none()
    }

    /// Tells the thread how many bytes of the vector are in use.
    #[inline]
    pub(crate) fn used(&self, bytes: usize) {
        if let Some(t) = &self.inner {
            t.at(bytes);
        }
    }

    /// Stops and joins the thread.
    pub(crate) fn stop(&mut self) {
        self.inner = None;
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Pages of `[start, start + len)` that are resident (`mincore`), and all its pages.
    fn resident_pages(start: usize, len: usize) -> (usize, usize) {
        let page = 4096;
        let first = start & !(page - 1);
        let n = (start + len - first).div_ceil(page);
        let mut vec = vec![0u8; n];
        // SAFETY: the range lies inside a live allocation of the caller; mincore only
        // reports residency into `vec`, which has one byte per page.
        let r = unsafe { libc::mincore(first as *mut libc::c_void, n * page, vec.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore failed");
        (vec.iter().filter(|&&b| b & 1 == 1).count(), n)
    }

    /// Waits until every page of `[start, start + len)` is resident; whether they are.
    fn wait_resident(start: usize, len: usize, deadline: Instant) -> bool {
        loop {
            let (resident, all) = resident_pages(start, len);
            if resident == all {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Why a test could not run: this kernel refuses `MADV_POPULATE_WRITE`.
    const NO_POPULATE: &str = "this kernel refuses MADV_POPULATE_WRITE (Linux 5.14 and later)";
    /// Why a test could not run: no transparent huge pages.
    const NO_THP: &str =
        "no transparent huge pages on this kernel (no /sys/kernel/mm/transparent_hugepage)";
    /// Why a test could not run: one CPU.
    const ONE_CPU: &str = "one CPU only, and the populating thread needs a second";

    /// Whether `test` can check `what` here: true when every one of `needs` holds
    /// (`(holds, why not)`), otherwise false after saying, through
    /// `streamscope_testkit::skip`, which ones did not.
    fn can_check(test: &str, what: &str, needs: &[(bool, &str)]) -> bool {
        let missing: Vec<&str> = needs
            .iter()
            .filter(|(holds, _)| !holds)
            .map(|&(_, why)| why)
            .collect();
        if !missing.is_empty() {
            streamscope_testkit::skip(
                &format!("flow::prefault::tests::{test}"),
                what,
                &missing.join("; "),
            );
        }
        missing.is_empty()
    }

    fn two_cpus() -> bool {
        std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
    }

    fn kernel_has_thp() -> bool {
        std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists()
    }

    /// Whether this kernel takes `MADV_POPULATE_WRITE` (Linux 5.14 and later).
    fn kernel_populates() -> bool {
        let mut v: Vec<u8> = Vec::with_capacity(1 << 16);
        let base = (v.as_mut_ptr() as usize + 4095) & !4095;
        // SAFETY: one page inside `v`'s allocation; populating never changes memory.
        unsafe { libc::madvise(base as *mut libc::c_void, 4096, libc::MADV_POPULATE_WRITE) == 0 }
    }

    /// A vector of `cap` bytes' capacity holding `len` bytes of a known pattern.
    fn patterned(cap: usize, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(cap);
        v.extend((0..len).map(|i| (i % 251) as u8));
        v
    }

    /// Whether `v` holds the pattern of [`patterned`].
    fn is_patterned(v: &[u8]) -> bool {
        v.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8)
    }

    #[test]
    fn populates_ahead_of_the_used_part_and_leaves_contents_alone() {
        if !can_check(
            "populates_ahead_of_the_used_part_and_leaves_contents_alone",
            "populating a vector's capacity ahead of its use on another thread",
            &[(two_cpus(), ONE_CPU), (kernel_populates(), NO_POPULATE)],
        ) {
            return;
        }
        let cap = 4 * AHEAD;
        let mut v = patterned(cap, (3 << 20) + 123);
        let base = v.as_ptr() as usize;
        let mut p = Prefault::start(&v, 2);
        p.used(v.len());
        // The thread populates up to `AHEAD` bytes past the used part, and no further.
        let deadline = Instant::now() + Duration::from_secs(20);
        assert!(wait_resident(base + v.len(), AHEAD - 4096, deadline));
        let beyond = base + v.len() + AHEAD + 4096;
        assert_eq!(resident_pages(beyond, cap - (beyond - base)).0, 0);
        // Telling it more moves it on.
        v.resize(AHEAD, 7);
        p.used(v.len());
        assert!(wait_resident(base + AHEAD, AHEAD - 4096, deadline));
        p.stop();
        assert!(is_patterned(&v[..(3 << 20) + 123]));
        assert!(v[(3 << 20) + 123..].iter().all(|&b| b == 7));
        // Stopped: the vector may now move.
        v.reserve(cap);
        assert_eq!(v.len(), AHEAD);
    }

    /// The `VmFlags` of the mapping that holds `addr` (`/proc/self/smaps`).
    fn vm_flags(addr: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((lo, hi)) = range.split_once('-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    inside = (lo..hi).contains(&addr);
                    continue;
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return Some(flags.trim().to_string());
                }
            }
        }
        None
    }

    #[test]
    fn a_region_is_advised_for_huge_pages_and_then_populated_whole() {
        if !can_check(
            "a_region_is_advised_for_huge_pages_and_then_populated_whole",
            "advising a region for huge pages and populating it whole",
            &[
                (kernel_has_thp(), NO_THP),
                (kernel_populates(), NO_POPULATE),
            ],
        ) {
            return;
        }
        // As the flow index grows: a zeroed table, advised, populated, then filled.
        let mut table = vec![0u64; 2 << 20].into_boxed_slice();
        huge_pages(&mut table);
        populate(&mut table);
        let base = table.as_ptr() as usize;
        let first = (base + (2 << 20) - 1) & !((2 << 20) - 1);
        let flags = vm_flags(first).expect("mapping of the table");
        assert!(flags.split(' ').any(|f| f == "hg"), "{flags}");
        // Every page wholly inside the table is mapped.
        let lo = (base + 4095) & !4095;
        let hi = (base + std::mem::size_of_val(&*table)) & !4095;
        let (resident, all) = resident_pages(lo, hi - lo);
        assert_eq!(resident, all);
        assert!(table.iter().all(|&e| e == 0));
        table
            .iter_mut()
            .enumerate()
            .for_each(|(i, e)| *e = i as u64);
        assert_eq!(table[12_345], 12_345);
    }

    #[test]
    fn huge_pages_are_asked_for_past_the_used_part_only() {
        if !can_check(
            "huge_pages_are_asked_for_past_the_used_part_only",
            "huge-page advice past a vector's used part",
            &[(kernel_has_thp(), NO_THP)],
        ) {
            return;
        }
        let cap = 4 * AHEAD;
        let mut v = patterned(cap, (5 << 20) + 77);
        let base = v.as_ptr() as usize;
        // SAFETY: the range is `v`'s unused capacity, alive for the call.
        unsafe { streamscope_memory::huge_pages_range(base + v.len(), cap - v.len()) };
        // The advice splits the mapping: the used part keeps its flags, the rest from
        // the next 2 MiB boundary on is marked `hg`.
        let first = (base + v.len() + (2 << 20) - 1) & !((2 << 20) - 1);
        let flags = vm_flags(first).expect("mapping of the capacity");
        assert!(flags.split(' ').any(|f| f == "hg"), "{flags}");
        let flags = vm_flags(base).expect("mapping of the used part");
        assert!(!flags.split(' ').any(|f| f == "hg"), "{flags}");
        // Contents unchanged; the rest can be used as before.
        v.resize(cap, 9);
        assert!(is_patterned(&v[..(5 << 20) + 77]));
        assert!(v[(5 << 20) + 77..].iter().all(|&b| b == 9));
    }

    #[test]
    fn small_vectors_get_no_thread() {
        let v: Vec<u64> = Vec::with_capacity(1024);
        assert!(Prefault::start(&v, 2).inner.is_none());
    }

    #[test]
    fn populate_maps_every_page_and_keeps_the_zeros() {
        if !can_check(
            "populate_maps_every_page_and_keeps_the_zeros",
            "populating fresh memory in one call",
            &[(kernel_populates(), NO_POPULATE)],
        ) {
            return;
        }
        // 16 MiB of fresh anonymous memory, nothing touched yet.
        let len = 16 << 20;
        // SAFETY: a new private anonymous mapping, unmapped below; nothing else uses it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        // SAFETY: the mapping is `len` bytes, readable and writable, zero-filled.
        let table = unsafe { std::slice::from_raw_parts_mut(base.cast::<u64>(), len / 8) };
        assert_eq!(resident_pages(base as usize, len).0, 0);
        super::populate(table);
        assert_eq!(resident_pages(base as usize, len), (len / 4096, len / 4096));
        assert!(table.iter().all(|&v| v == 0));
        // SAFETY: unmaps the mapping made above; `table` is not used after.
        assert_eq!(unsafe { libc::munmap(base, len) }, 0);
    }
}
