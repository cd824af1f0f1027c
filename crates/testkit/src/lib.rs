//! What streamscope's tests share: where the public corpus of real captures and tshark
//! are, and how a test says what it could not check.
//!
//! The corpus (`oracle.json`, its `MANIFEST.md` and the captures, see the README) is not
//! part of the repository. Tests find it through [`corpus`]: the folder named by the
//! environment variable [`CORPUS_VAR`] (a relative path is taken from the workspace root),
//! else `../shared/corpus` beside the checkout. Tests that run tshark find it through
//! [`tshark`]: the binary named by `TSHARK`, else `tshark` on `PATH`.
//!
//! When either is missing a test calls [`skip`]'s line and passes, so that a fresh clone
//! with nothing beside it passes `cargo test --workspace`. With [`REQUIRE_VAR`] set to
//! `1` (as `.ci/run` does) a missing corpus or tshark fails the test instead.
//!
//! Skip lines go straight to the process's standard error, past the test harness's
//! output capture, so they show in a plain `cargo test` run:
//!
//! ```text
//! SKIPPED oracle: conversations against tshark not checked: no corpus at ../shared/corpus ...
//! ```

pub mod tcp;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// Names the corpus folder (the one holding `oracle.json`).
pub const CORPUS_VAR: &str = "STREAMSCOPE_CORPUS";

/// `1`: a missing corpus or tshark fails the tests that need them instead of skipping.
pub const REQUIRE_VAR: &str = "STREAMSCOPE_REQUIRE_ORACLES";

/// Names the tshark binary (default: `tshark` on `PATH`).
pub const TSHARK_VAR: &str = "TSHARK";

/// The workspace root (this crate lives in `crates/testkit`).
pub fn workspace_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        here.join("../..")
            .canonicalize()
            .unwrap_or_else(|_| here.join("../.."))
    })
}

/// Whether missing oracles fail the tests ([`REQUIRE_VAR`] is `1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// Writes one line to the process's standard error, bypassing the test harness's
/// capture, so that it shows even for a passing test.
pub fn say(line: &str) {
    let stderr = std::io::stderr();
    let mut lock = stderr.lock();
    let _ = writeln!(lock, "{line}");
}

/// Says that `test` did not check `what`, and why. Every partial or whole skip in the
/// workspace's tests goes through here, so `cargo test 2>&1 | grep SKIPPED` lists them.
pub fn skip(test: &str, what: &str, why: &str) {
    say(&format!("SKIPPED {test}: {what} not checked: {why}"));
}

/// Files in the corpus the conformance tests were written against.
pub const CORPUS_FILES: usize = 40;

/// The public corpus: its folder and its parsed `oracle.json`.
#[derive(Debug)]
pub struct Corpus {
    dir: PathBuf,
    oracle: Value,
}

impl Corpus {
    /// The folder holding the captures and `oracle.json`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one corpus capture.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The whole of `oracle.json`.
    pub fn oracle(&self) -> &Value {
        &self.oracle
    }

    /// Each corpus file with its facts, in name order.
    pub fn files(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.oracle["files"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Every file of the oracle, checking that the whole corpus is there (at least
    /// [`CORPUS_FILES`] files): a test over "every file" that silently read a partial
    /// corpus would prove less than it says.
    pub fn all_files(&self) -> Vec<(&str, &Value)> {
        let files: Vec<(&str, &Value)> = self.files().collect();
        assert!(
            files.len() >= CORPUS_FILES,
            "expected the {CORPUS_FILES}-file corpus in {}, got {} files",
            self.dir.display(),
            files.len()
        );
        files
    }

    /// One file's facts.
    pub fn facts(&self, name: &str) -> &Value {
        let v = &self.oracle["files"][name];
        assert!(v.is_object(), "oracle.json has no entry for {name}");
        v
    }
}

/// Where the corpus should be: [`CORPUS_VAR`], else `../shared/corpus` beside the
/// checkout.
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os(CORPUS_VAR) {
        Some(v) if !v.is_empty() => {
            let p = PathBuf::from(v);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        _ => workspace_root().join("../shared/corpus"),
    }
}

fn load_corpus() -> Result<Corpus, String> {
    let dir = corpus_dir();
    let oracle_path = dir.join("oracle.json");
    let bytes = std::fs::read(&oracle_path).map_err(|e| {
        format!(
            "no corpus at {} ({e}; set {CORPUS_VAR} to the folder holding oracle.json)",
            oracle_path.display()
        )
    })?;
    let oracle: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not JSON: {e}", oracle_path.display()))?;
    if !oracle["files"].is_object() {
        return Err(format!("{} has no \"files\" object", oracle_path.display()));
    }
    Ok(Corpus { dir, oracle })
}

/// The corpus, or `None` after saying that `test` did not check `what`. With
/// [`REQUIRE_VAR`] set, a missing corpus panics instead.
pub fn corpus(test: &str, what: &str) -> Option<&'static Corpus> {
    static CORPUS: OnceLock<Result<Corpus, String>> = OnceLock::new();
    match CORPUS.get_or_init(load_corpus) {
        Ok(c) => Some(c),
        Err(why) if required() => {
            panic!("{test}: {what} cannot be checked: {why} ({REQUIRE_VAR}=1)")
        }
        Err(why) => {
            skip(test, what, why);
            None
        }
    }
}

/// A tshark that runs.
#[derive(Debug, Clone)]
pub struct Tshark {
    /// The binary.
    pub exe: PathBuf,
    /// The first line of `tshark --version`.
    pub version: String,
}

/// How to get tshark.
pub const TSHARK_HINT: &str = "install it with `apt-get install tshark` (Debian/Ubuntu), or \
set TSHARK to a tshark binary";

fn find_tshark() -> Result<Tshark, String> {
    let exe = std::env::var_os(TSHARK_VAR)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("tshark"), PathBuf::from);
    let out = Command::new(&exe)
        .arg("--version")
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("cannot run {} ({e}); {TSHARK_HINT}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} --version` failed ({}); {TSHARK_HINT}",
            exe.display(),
            out.status
        ));
    }
    let version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    Ok(Tshark { exe, version })
}

/// tshark, or `None` after saying that `test` did not check `what`. With [`REQUIRE_VAR`]
/// set, a missing tshark panics instead.
pub fn tshark(test: &str, what: &str) -> Option<&'static Tshark> {
    static TSHARK: OnceLock<Result<Tshark, String>> = OnceLock::new();
    match TSHARK.get_or_init(find_tshark) {
        Ok(t) => Some(t),
        Err(why) if required() => {
            panic!("{test}: {what} cannot be checked: {why} ({REQUIRE_VAR}=1)")
        }
        Err(why) => {
            skip(test, what, why);
            None
        }
    }
}

/// A global allocator that counts the allocations (and reallocations) the current
/// thread makes inside [`CountingAlloc::watched`], for tests that pin what a hot path
/// allocates. Install it in the test binary:
///
/// ```ignore
/// #[global_allocator]
/// static GLOBAL: streamscope_testkit::CountingAlloc = streamscope_testkit::CountingAlloc;
/// ```
///
/// Other threads (a reader's page-mapping thread, the test harness) are not counted.
pub struct CountingAlloc;

thread_local! {
    static WATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the thread-locals may already be gone while a thread shuts down.
    let _ = WATCHING.try_with(|watching| {
        if watching.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; counting touches
// only thread-locals that need no allocation (const-initialised `Cell`s).
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        note_allocation();
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        note_allocation();
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

impl CountingAlloc {
    /// Runs `f` and returns its result with the allocations this thread made during it
    /// (counted only when [`CountingAlloc`] is the global allocator).
    pub fn watched<R>(f: impl FnOnce() -> R) -> (R, u64) {
        ALLOCATIONS.with(|n| n.set(0));
        WATCHING.with(|w| w.set(true));
        let r = f();
        WATCHING.with(|w| w.set(false));
        (r, ALLOCATIONS.with(std::cell::Cell::get))
    }
}
