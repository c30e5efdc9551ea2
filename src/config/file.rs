//! Reading a configuration or state file without trusting what is at its
//! path: only a regular file, at most [`caps::MAX_KEYFILE_BYTES`], and never
//! a wait. A FIFO named `settings` once blocked start-up forever, and a
//! settings file linked to `/dev/zero` was read until allocation failed.
//!
//! The path is `stat`ed first, so a device is never even opened (opening
//! some has effects: a watchdog starts, a tape rewinds), then opened with
//! `O_NONBLOCK` (a FIFO swapped in meanwhile cannot block the open) and
//! `fstat`ed again, and the read stops one byte past the cap whatever the
//! size said.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::caps;

/// Whether the last component of the path may be a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Follow it: main.conf, board configs and policy files are installed by
    /// root, and distributions link `/etc` files (NixOS, OpenWrt overlays).
    Follow,
    /// Refuse it: the state dir is pathman's own, and it never makes links
    /// there (its atomic writes would replace the link, not its target).
    Refuse,
}

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// Nothing at the path.
    NotFound,
    /// A symbolic link where [`Links::Refuse`] was asked.
    SymbolicLink,
    /// Not a regular file; names what it is.
    NotRegular(&'static str),
    /// Larger than the cap.
    TooBig { size: u64 },
    /// Any other I/O error.
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotFound => f.write_str("no such file"),
            ReadError::SymbolicLink => {
                f.write_str("is a symbolic link, and state files are never links")
            }
            ReadError::NotRegular(what) => write!(f, "is {what}, not a regular file"),
            ReadError::TooBig { size } => write!(
                f,
                "is {size} bytes, more than the {} bytes a configuration file may have",
                caps::MAX_KEYFILE_BYTES
            ),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReadError {}

fn what_is(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

fn io_error(e: io::Error, links: Links) -> ReadError {
    match e.raw_os_error() {
        _ if e.kind() == io::ErrorKind::NotFound => ReadError::NotFound,
        // open(2) with O_NOFOLLOW on a link.
        Some(libc::ELOOP) if links == Links::Refuse => ReadError::SymbolicLink,
        _ => ReadError::Io(e),
    }
}

fn check(meta: &fs::Metadata) -> Result<(), ReadError> {
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(what_is(meta.file_type())));
    }
    if meta.len() > caps::MAX_KEYFILE_BYTES {
        return Err(ReadError::TooBig { size: meta.len() });
    }
    Ok(())
}

/// Reads a whole configuration or state file, under the rules of the
/// module doc. Time and memory are bounded by the cap.
pub fn read_bounded(path: &Path, links: Links) -> Result<Vec<u8>, ReadError> {
    let meta = match links {
        Links::Follow => fs::metadata(path),
        Links::Refuse => fs::symlink_metadata(path),
    }
    .map_err(|e| io_error(e, links))?;
    if links == Links::Refuse && meta.file_type().is_symlink() {
        return Err(ReadError::SymbolicLink);
    }
    check(&meta)?;
    let mut flags = libc::O_NONBLOCK;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| io_error(e, links))?;
    // The path may have been replaced between stat and open.
    let meta = file.metadata().map_err(ReadError::Io)?;
    check(&meta)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(caps::MAX_KEYFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    // A file that grew after fstat (or a /proc-like file that reports 0).
    if bytes.len() as u64 > caps::MAX_KEYFILE_BYTES {
        return Err(ReadError::TooBig {
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TempDir;

    fn mkfifo(path: &Path) {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    #[test]
    fn regular_file_is_read() {
        let t = TempDir::new("file-test");
        let p = t.0.join("settings");
        fs::write(&p, "[global]\nOfflineMode=false\n").unwrap();
        for links in [Links::Follow, Links::Refuse] {
            assert_eq!(
                read_bounded(&p, links).unwrap(),
                b"[global]\nOfflineMode=false\n"
            );
        }
        assert!(matches!(
            read_bounded(&t.0.join("absent"), Links::Follow),
            Err(ReadError::NotFound)
        ));
    }

    /// A FIFO nobody writes to: refused at once (it used to block forever).
    #[test]
    fn fifo_is_refused_without_blocking() {
        let t = TempDir::new("file-test");
        let p = t.0.join("settings");
        mkfifo(&p);
        for links in [Links::Follow, Links::Refuse] {
            let e = read_bounded(&p, links).unwrap_err();
            assert!(matches!(e, ReadError::NotRegular("a FIFO")), "{e}");
            assert_eq!(e.to_string(), "is a FIFO, not a regular file");
        }
    }

    /// A link to /dev/zero: refused as a link in the state dir, as a
    /// character device elsewhere; never read (it used to be read until
    /// allocation failed).
    #[test]
    fn link_to_dev_zero_is_refused() {
        let t = TempDir::new("file-test");
        let p = t.0.join("settings");
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        assert!(matches!(
            read_bounded(&p, Links::Refuse),
            Err(ReadError::SymbolicLink)
        ));
        let e = read_bounded(&p, Links::Follow).unwrap_err();
        assert!(
            matches!(e, ReadError::NotRegular("a character device")),
            "{e}"
        );
        // The device itself, without a link.
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), Links::Refuse),
            Err(ReadError::NotRegular("a character device"))
        ));
    }

    #[test]
    fn link_to_regular_file_follows_only_when_allowed() {
        let t = TempDir::new("file-test");
        let target = t.0.join("real.conf");
        fs::write(&target, "[General]\n").unwrap();
        let p = t.0.join("main.conf");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        assert_eq!(read_bounded(&p, Links::Follow).unwrap(), b"[General]\n");
        assert!(matches!(
            read_bounded(&p, Links::Refuse),
            Err(ReadError::SymbolicLink)
        ));
    }

    #[test]
    fn directory_is_refused() {
        let t = TempDir::new("file-test");
        assert!(matches!(
            read_bounded(&t.0, Links::Refuse),
            Err(ReadError::NotRegular("a directory"))
        ));
    }

    /// One byte over the cap is refused; a sparse 1 GiB file costs nothing.
    #[test]
    fn oversized_file_is_refused() {
        let t = TempDir::new("file-test");
        let p = t.0.join("settings");
        let cap = caps::MAX_KEYFILE_BYTES;
        fs::write(&p, vec![b'#'; cap as usize]).unwrap();
        assert_eq!(read_bounded(&p, Links::Refuse).unwrap().len() as u64, cap);
        fs::write(&p, vec![b'#'; cap as usize + 1]).unwrap();
        let e = read_bounded(&p, Links::Refuse).unwrap_err();
        assert!(
            matches!(e, ReadError::TooBig { size } if size == cap + 1),
            "{e}"
        );
        assert!(e.to_string().contains("65537 bytes"), "{e}");
        let f = fs::File::create(&p).unwrap();
        f.set_len(1 << 30).unwrap();
        assert!(matches!(
            read_bounded(&p, Links::Follow),
            Err(ReadError::TooBig { size }) if size == 1 << 30
        ));
    }
}
