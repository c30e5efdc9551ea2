//! Which kernel links pathman manages and as what technology (SPEC §2):
//! loopback and non-Ethernet link types are ignored, so are blacklisted
//! prefixes, links not named by `-i` (when given) or named by `-I`, and the
//! board config's `Ignore`; the technology comes from the board config or
//! sysfs DEVTYPE.

use std::net::Ipv6Addr;

use crate::config::board::Board;
use crate::config::main_conf::MainConf;
use crate::core::model::{Ipv6Assigned, LinkSeen};
use crate::core::types::Technology;
use crate::edge::rtnl::Link;
use crate::edge::sysfs;

use super::options::Options;

const ARPHRD_ETHER: u16 = 1;

/// The kernel's IPv6 state of one managed interface.
#[derive(Debug, Clone)]
pub struct Ipv6View {
    pub ifindex: u32,
    pub addrs: Vec<Ipv6Assigned>,
    pub gateway: Option<Ipv6Addr>,
}

/// The device filter.
#[derive(Debug)]
pub struct Devices {
    only: Vec<String>,
    never: Vec<String>,
    blacklist: Vec<String>,
    board: Option<Board>,
}

impl Devices {
    /// A filter from the command line, main.conf and the board config.
    pub fn new(opts: &Options, conf: &MainConf, board: Option<Board>) -> Devices {
        Devices {
            only: opts.devices.clone(),
            never: opts.no_devices.clone(),
            blacklist: conf.network_interface_blacklist.clone(),
            board,
        }
    }

    /// Interfaces named (without a wildcard) by `-i` or the board's
    /// `Manage` that are not among `present`: pathman waits for them.
    pub fn absent<'a>(&'a self, present: &[&str]) -> Vec<&'a str> {
        let named = self.only.iter().map(|n| n.as_str()).chain(
            self.board
                .iter()
                .flat_map(|b| b.manage.iter().map(|n| n.as_str())),
        );
        let mut out: Vec<&str> = named
            .filter(|n| !n.contains(['*', '?']) && !present.contains(n))
            .collect();
        crate::sort::sort(&mut out);
        out.dedup();
        out
    }

    /// The link as the model sees it, or `None` when pathman leaves it alone.
    pub fn classify(&self, link: &Link) -> Option<LinkSeen> {
        let name = link.name.as_str();
        if link.loopback || link.arphrd != ARPHRD_ETHER {
            return None;
        }
        let mac = link.mac?;
        if !self.only.is_empty() && !self.only.iter().any(|n| n == name) {
            return None;
        }
        if self.never.iter().any(|n| n == name) {
            return None;
        }
        if self.only.is_empty()
            && self
                .blacklist
                .iter()
                .any(|p| !p.is_empty() && name.starts_with(p.as_str()))
        {
            return None;
        }
        let from_board = match &self.board {
            Some(board) => {
                if !board.is_managed(name) {
                    return None;
                }
                board.technology_of(name)
            }
            None => None,
        };
        let tech = match from_board {
            Some(t) => t,
            None => match sysfs::devtype(name) {
                Ok(devtype) => Technology::from_devtype(devtype.as_deref())?,
                Err(e) => {
                    log::debug!("{name}: no sysfs entry ({e}), not managed");
                    return None;
                }
            },
        };
        Some(LinkSeen {
            ifindex: link.ifindex,
            name: link.name.clone(),
            mac,
            tech,
            up: link.up,
            carrier: link.carrier,
            mtu: link.mtu,
            lan: tech == Technology::Ethernet
                && self.board.as_ref().is_some_and(|b| b.is_lan_port(name)),
            master: link.master,
        })
    }
}

impl super::Daemon {
    /// Says once, at start, which named interfaces are not there yet (a
    /// board config written for a board variant, a USB modem not plugged):
    /// they are managed when they appear.
    pub(super) fn say_absent_devices(&self) {
        let present: Vec<&str> = self.model.devices.iter().map(|d| d.name.as_str()).collect();
        for name in self.devices.absent(&present) {
            log::warn!("{name}: named by -i or the board config but not present (or not an Ethernet-type link); waiting for it");
        }
    }
}
