//! The one adapter that touches time: reading and setting the system clock,
//! slewing it, the zoneinfo link, and the state-dir file that keeps the last
//! synchronised time for boards without an RTC. Everything that decides
//! when and by how much is in [`crate::core::clock`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whether this process may set the clock: CAP_SYS_TIME in its effective set.
pub fn may_set_clock() -> bool {
    const CAP_SYS_TIME: u32 = 25;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_TIME) != 0)
}

fn to_system(ns_since_epoch: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns_since_epoch)
}

/// Nanoseconds since the epoch of `t` (0 before it).
pub fn ns_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The system time moved by `offset_ns`.
pub fn shifted(now: SystemTime, offset_ns: i64) -> SystemTime {
    let d = Duration::from_nanos(offset_ns.unsigned_abs());
    if offset_ns >= 0 {
        now + d
    } else {
        now.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

/// Sets the system clock (CLOCK_REALTIME).
pub fn set(ns_since_epoch: u64) -> std::io::Result<()> {
    let t = to_system(ns_since_epoch)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let spec = nix::sys::time::TimeSpec::new(
        i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        i64::from(t.subsec_nanos()),
    );
    nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, spec).map_err(std::io::Error::from)
}

/// Steps the clock by `offset_ns`.
pub fn step(offset_ns: i64) -> std::io::Result<()> {
    set(ns_since_epoch(shifted(SystemTime::now(), offset_ns)))
}

/// Lets the kernel slew the clock by `offset_ns` (adjtime).
pub fn slew(offset_ns: i64) -> std::io::Result<()> {
    let us = offset_ns / 1000;
    let delta = libc::timeval {
        tv_sec: (us / 1_000_000) as _,
        tv_usec: (us % 1_000_000) as _,
    };
    // SAFETY: delta is a valid timeval; a null old-delta pointer is allowed.
    let rc = unsafe { libc::adjtime(&delta, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The zone the zoneinfo link points at (`Europe/Berlin`), if it is a link
/// into `zoneinfo`.
pub fn timezone(localtime: &Path, zoneinfo: &Path) -> Option<String> {
    let target = std::fs::read_link(localtime).ok()?;
    let target = if target.is_absolute() {
        target
    } else {
        localtime.parent()?.join(target)
    };
    let rel = target.strip_prefix(zoneinfo).ok()?;
    rel.to_str().map(str::to_string)
}

/// Points the zoneinfo link at `zone` (already checked by
/// [`crate::core::validate`]-style rules: no `..`, not absolute): the zone
/// must be a regular file under `zoneinfo`. Replaces the link atomically.
pub fn set_timezone(localtime: &Path, zoneinfo: &Path, zone: &str) -> Result<(), String> {
    let file = zoneinfo.join(zone);
    match std::fs::symlink_metadata(&file) {
        Ok(m) if m.file_type().is_file() => {}
        Ok(_) => {
            return Err(format!(
                "{zone} is not a zone file in {}",
                zoneinfo.display()
            ))
        }
        Err(_) => return Err(format!("no zone {zone} in {}", zoneinfo.display())),
    }
    let tmp = tmp_name(localtime);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&file, &tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, localtime).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", localtime.display())
    })
}

fn tmp_name(p: &Path) -> PathBuf {
    let mut name = p.file_name().unwrap_or_default().to_os_string();
    name.push(".pathman-tmp");
    p.with_file_name(name)
}

/// The file under the state dir that keeps the last synchronised time.
pub fn floor_file(state_dir: &Path) -> PathBuf {
    state_dir.join("clock")
}

/// The last synchronised time kept in `file`, seconds since the epoch.
pub fn read_floor(file: &Path) -> Option<u64> {
    let text = crate::config::file::read_bounded(file, crate::config::file::Links::Refuse).ok()?;
    std::str::from_utf8(&text).ok()?.trim().parse().ok()
}

/// Keeps `secs` as the last synchronised time.
pub fn write_floor(file: &Path, secs: u64) -> Result<(), String> {
    crate::config::store::write_atomic(file, format!("{secs}\n").as_bytes())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timezone_from_the_link() {
        let tmp = crate::test_dir::TempDir::new("tz");
        let dir = tmp.0.clone();
        let zi = dir.join("zoneinfo");
        std::fs::create_dir_all(zi.join("Europe")).unwrap();
        std::fs::write(zi.join("Europe/Berlin"), b"TZif").unwrap();
        let lt = dir.join("localtime");
        assert_eq!(timezone(&lt, &zi), None);
        set_timezone(&lt, &zi, "Europe/Berlin").unwrap();
        assert_eq!(timezone(&lt, &zi).as_deref(), Some("Europe/Berlin"));
        assert!(set_timezone(&lt, &zi, "Europe/Nowhere").is_err());
        assert!(
            set_timezone(&lt, &zi, "Europe").is_err(),
            "a directory is no zone"
        );
        assert_eq!(
            timezone(&lt, &zi).as_deref(),
            Some("Europe/Berlin"),
            "unchanged"
        );
        let f = floor_file(&dir);
        write_floor(&f, 1_800_000_000).unwrap();
        assert_eq!(read_floor(&f), Some(1_800_000_000));
    }

    #[test]
    fn shifting() {
        let t = UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(
            shifted(t, 1_000_000_000),
            UNIX_EPOCH + Duration::from_secs(101)
        );
        assert_eq!(
            shifted(t, -1_000_000_000),
            UNIX_EPOCH + Duration::from_secs(99)
        );
    }
}
