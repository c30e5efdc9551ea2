//! A temporary directory for unit tests, removed when it is dropped, so
//! also when the test fails (a panic unwinds through the drop).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `$TMPDIR/pathman-<tag>-<pid>-<n>`, made empty; removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "pathman-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
