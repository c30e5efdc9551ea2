//! DHCP leases kept in the run directory (`<run-dir>/lease-<service-id>`),
//! so a restarted pathman picks up the leases its predecessor held instead
//! of tearing down addresses, routes and MPTCP endpoints that live
//! connections use. The run directory is a tmpfs: a reboot, which clears
//! the kernel's addresses too, also forgets the leases.
//!
//! Expiry is kept in CLOCK_BOOTTIME seconds, which both processes share and
//! which does not jump with the wall clock.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::config::keyfile::KeyFile;
use crate::core::model::DhcpConfig;
use crate::core::types::{DomainList, Ipv4Net, Name, ServerList};

const GROUP: &str = "lease";

/// A lease as saved.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedLease {
    pub config: DhcpConfig,
    /// CLOCK_BOOTTIME second at which the lease ends; `None` = infinite.
    pub expires: Option<u64>,
}

/// The file of a service's lease.
pub fn path(run_dir: &Path, service_id: &str) -> PathBuf {
    run_dir.join(format!("lease-{service_id}"))
}

/// The keyfile text of a lease.
pub fn to_text(lease: &SavedLease) -> String {
    let mut kf = KeyFile::new();
    let c = &lease.config;
    let strings = |l: &ServerList| l.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    // Only valid group/key names are used, so none of these can fail.
    let _ = kf.set_string(GROUP, "Address", &c.net.addr.to_string());
    let _ = kf.set_u32(GROUP, "PrefixLength", u32::from(c.net.prefix_len));
    if let Some(gw) = c.gateway {
        let _ = kf.set_string(GROUP, "Router", &gw.to_string());
    }
    let _ = kf.set_list(GROUP, "Nameservers", &strings(&c.nameservers), ';');
    let _ = kf.set_list(GROUP, "Timeservers", &strings(&c.timeservers), ';');
    let domains: Vec<&str> = c.domains.iter().map(|d| d.as_str()).collect();
    let _ = kf.set_list(GROUP, "Domains", &domains, ';');
    if let Some(e) = lease.expires {
        let _ = kf.set_string(GROUP, "Expires", &e.to_string());
    }
    kf.to_string()
}

/// Parses a lease file; an error says what is wrong (the caller ignores the file).
pub fn parse(kf: &KeyFile) -> Result<SavedLease, String> {
    let addr: Ipv4Addr = kf
        .get_string(GROUP, "Address")
        .ok_or("no Address")?
        .parse()
        .map_err(|_| "bad Address")?;
    let prefix_len = kf
        .get_u32(GROUP, "PrefixLength")
        .map_err(|e| e.to_string())?
        .ok_or("no PrefixLength")?;
    if !(1..=32).contains(&prefix_len) {
        return Err(format!("bad PrefixLength {prefix_len}"));
    }
    let gateway = match kf.get_string(GROUP, "Router") {
        None => None,
        Some(g) => Some(g.parse::<Ipv4Addr>().map_err(|_| "bad Router")?),
    };
    let servers = |key: &str| -> Result<ServerList, String> {
        let mut out = ServerList::new();
        for s in kf.get_list(GROUP, key, ';').unwrap_or_default() {
            let a: IpAddr = s.parse().map_err(|_| format!("bad {key} entry {s:?}"))?;
            if out.push(a).is_err() {
                break;
            }
        }
        Ok(out)
    };
    let mut domains = DomainList::new();
    for d in kf.get_list(GROUP, "Domains", ';').unwrap_or_default() {
        let name = Name::try_from(d.as_str()).map_err(|_| "domain too long")?;
        if domains.push(name).is_err() {
            break;
        }
    }
    let expires = match kf.get_string(GROUP, "Expires") {
        None => None,
        Some(e) => Some(e.parse::<u64>().map_err(|_| "bad Expires")?),
    };
    Ok(SavedLease {
        config: DhcpConfig {
            net: Ipv4Net {
                addr,
                prefix_len: prefix_len as u8,
            },
            gateway,
            nameservers: servers("Nameservers")?,
            timeservers: servers("Timeservers")?,
            domains,
        },
        expires,
    })
}

/// Seconds on CLOCK_BOOTTIME (monotonic, counts suspend, shared by all processes).
pub fn boottime_secs() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| u64::try_from(t.tv_sec()).unwrap_or(0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut ns = ServerList::new();
        ns.push("198.18.1.1".parse().unwrap()).unwrap();
        let mut domains = DomainList::new();
        domains
            .push(Name::try_from("up1.lab.test").unwrap())
            .unwrap();
        let lease = SavedLease {
            config: DhcpConfig {
                net: Ipv4Net {
                    addr: Ipv4Addr::new(198, 18, 1, 146),
                    prefix_len: 24,
                },
                gateway: Some(Ipv4Addr::new(198, 18, 1, 1)),
                nameservers: ns,
                timeservers: ServerList::new(),
                domains,
            },
            expires: Some(12345),
        };
        let text = to_text(&lease);
        let (kf, _) = KeyFile::parse(&text, "lease").unwrap();
        assert_eq!(parse(&kf).unwrap(), lease);
        let (bad, _) = KeyFile::parse("[lease]\nAddress=1.2.3.4\nPrefixLength=0\n", "x").unwrap();
        assert!(parse(&bad).is_err());
    }
}
