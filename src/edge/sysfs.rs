//! The bits of sysfs and procfs pathman reads or writes: an interface's
//! DEVTYPE and traffic statistics, and the IPv6 sysctls that let the kernel
//! do SLAAC.

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

/// The kernel's traffic statistics of an interface
/// (`/sys/class/net/<if>/statistics/*`).
pub fn link_stats(ifname: &str) -> std::io::Result<crate::core::counter::LinkStats> {
    let read = |name: &str| -> std::io::Result<u64> {
        let text = fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/{name}"))?;
        text.trim().parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{name}: {e}"))
        })
    };
    Ok(crate::core::counter::LinkStats {
        rx_packets: read("rx_packets")?,
        tx_packets: read("tx_packets")?,
        rx_bytes: read("rx_bytes")?,
        tx_bytes: read("tx_bytes")?,
        rx_errors: read("rx_errors")?,
        tx_errors: read("tx_errors")?,
        rx_dropped: read("rx_dropped")?,
        tx_dropped: read("tx_dropped")?,
    })
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
