//! The bits of sysfs and procfs pathman reads or writes: an interface's
//! DEVTYPE, and the IPv6 sysctls that let the kernel do SLAAC.

use std::fs;

use crate::core::types::Technology;

/// Technology from `/sys/class/net/<if>/uevent` DEVTYPE (SPEC §2): none →
/// ethernet, `gadget` → gadget, `wlan` → wifi, `wwan` → cellular; other
/// DEVTYPEs (bridge, vlan, …) are not uplinks pathman manages by default.
pub fn technology_of(ifname: &str) -> Option<Technology> {
    let uevent = fs::read_to_string(format!("/sys/class/net/{ifname}/uevent")).unwrap_or_default();
    classify(&uevent)
}

/// Pure part of [`technology_of`].
pub fn classify(uevent: &str) -> Option<Technology> {
    let devtype = uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVTYPE="))
        .map(str::trim);
    match devtype {
        None => Some(Technology::Ethernet),
        Some("gadget") => Some(Technology::Gadget),
        Some("wlan") => Some(Technology::Wifi),
        Some("wwan") => Some(Technology::Cellular),
        Some(_) => None,
    }
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
        assert_eq!(
            classify("INTERFACE=eth0\nIFINDEX=2\n"),
            Some(Technology::Ethernet)
        );
        assert_eq!(classify("DEVTYPE=gadget\n"), Some(Technology::Gadget));
        assert_eq!(classify("DEVTYPE=wlan\n"), Some(Technology::Wifi));
        assert_eq!(classify("DEVTYPE=wwan\n"), Some(Technology::Cellular));
        assert_eq!(classify("DEVTYPE=bridge\n"), None);
    }
}
