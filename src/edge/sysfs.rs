//! The bits of sysfs and procfs pathman reads or writes: an interface's
//! DEVTYPE, and the IPv6 sysctls that let the kernel do SLAAC.

use std::fs;

/// The DEVTYPE of an interface from `/sys/class/net/<if>/uevent`:
/// `Ok(None)` when the file has no DEVTYPE line (plain Ethernet), an error
/// when it cannot be read (interface gone, sysfs of another namespace).
pub fn devtype(ifname: &str) -> std::io::Result<Option<String>> {
    let uevent = fs::read_to_string(format!("/sys/class/net/{ifname}/uevent"))?;
    Ok(devtype_of(&uevent).map(str::to_string))
}

fn devtype_of(uevent: &str) -> Option<&str> {
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVTYPE="))
        .map(str::trim)
}

/// Lets the kernel configure IPv6 by SLAAC on `ifname` (accept_ra=2 so it
/// works on a router that forwards) or stops it.
pub fn set_ipv6_autoconf(ifname: &str, enabled: bool) -> std::io::Result<()> {
    let base = format!("/proc/sys/net/ipv6/conf/{ifname}");
    fs::write(format!("{base}/accept_ra"), if enabled { "2" } else { "0" })?;
    fs::write(format!("{base}/autoconf"), if enabled { "1" } else { "0" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devtypes() {
        assert_eq!(devtype_of("INTERFACE=eth0\nIFINDEX=2\n"), None);
        assert_eq!(devtype_of("DEVTYPE=gadget\n"), Some("gadget"));
    }
}
