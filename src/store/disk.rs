//! Free space on the data dir's file system: a write is refused while less than the
//! configured reserve (`storage.min_free_space`) is left, before DuckDB itself would fail.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Bytes available to this (unprivileged) process on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    usage(path).map(|(free, _)| free)
}

/// Bytes available to this (unprivileged) process and the file system's size, for
/// the file system holding `path`.
// The field types differ between platforms; on some the casts are no-ops.
#[allow(clippy::unnecessary_cast)]
pub fn usage(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a plain struct statvfs fills.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    Ok((
        (st.f_bavail as u64).saturating_mul(frsize),
        (st.f_blocks as u64).saturating_mul(frsize),
    ))
}

/// Whether the disk is (nearly) full, checked at most every `RECHECK_MS`.
pub struct Space {
    reserve: AtomicU64,
    full: AtomicBool,
    checked_ms: AtomicU64,
    epoch: Instant,
}

const RECHECK_MS: u64 = 250;

impl Default for Space {
    fn default() -> Self {
        Space {
            reserve: AtomicU64::new(0),
            full: AtomicBool::new(false),
            checked_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Space {
    pub fn set_reserve(&self, bytes: u64) {
        self.reserve.store(bytes, Ordering::Relaxed);
        self.checked_ms.store(0, Ordering::Relaxed);
    }

    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// A write failed for lack of space: refuse writes until space is back.
    pub fn mark_full(&self, dir: &Path) {
        self.flip(true, dir, None);
    }

    /// True when a write may go ahead.
    pub fn check(&self, dir: &Path) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64 + RECHECK_MS;
        let last = self.checked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= RECHECK_MS
            && self
                .checked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let reserve = self.reserve.load(Ordering::Relaxed);
            if reserve > 0 || self.is_full() {
                match free_bytes(dir) {
                    // Space back after a real ENOSPC (no reserve): a megabyte at least.
                    Ok(free) => self.flip(free < reserve.max(1 << 20), dir, Some(free)),
                    Err(e) => tracing::debug!(error = %e, "cannot read free disk space"),
                }
            }
        }
        !self.is_full()
    }

    /// Logs the change of state once (not every refused write).
    fn flip(&self, full: bool, dir: &Path, free: Option<u64>) {
        if self.full.swap(full, Ordering::Relaxed) != full {
            if full {
                tracing::error!(dir = %dir.display(), free_bytes = ?free,
                    reserve_bytes = self.reserve.load(Ordering::Relaxed),
                    "disk full: ingest answers 503 until space is freed; reads keep working");
            } else {
                tracing::warn!(dir = %dir.display(), free_bytes = ?free, "disk space is back: ingest resumes");
            }
        }
    }
}

/// Whether DuckDB failed because the disk is full.
pub fn is_no_space(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("no space left") || m.contains("disk is full") || m.contains("disk full")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_larger_than_the_disk_refuses() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        let (free, total) = usage(dir.path()).unwrap();
        assert!(free <= total, "{free} > {total}");
        let s = Space::default();
        assert!(s.check(dir.path()));
        s.set_reserve(u64::MAX);
        assert!(!s.check(dir.path()));
        s.set_reserve(0);
        assert!(s.check(dir.path()), "space back");
        assert!(is_no_space(
            "IO Error: Could not write file: No space left on device"
        ));
        assert!(!is_no_space("Constraint Error"));
    }
}
