//! Tethering (SPEC §6a): which interfaces share the uplinks, the /24 block
//! their clients get, and what that means for the kernel — the bridge and
//! its ports, the bridge's address, NAT out of every connected uplink, IPv4
//! forwarding and the DHCP server. Pure: the model decides, the daemon's
//! edge (`daemon::tether`) makes the kernel match.

use std::net::Ipv4Addr;

use crate::core::model::Model;
use crate::core::types::{Ipv4Net, Technology};

/// The /24 blocks tethering may use, in ConnMan's order: 192.168.0.0/16,
/// then 172.16.0.0/12, then 10.0.0.0/8.
const RANGES: [(Ipv4Addr, u8); 3] = [
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
];

/// One tethering block: a /24 whose .1 is the bridge (router, DHCP server)
/// and whose .2–.253 are the clients' pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Block(Ipv4Addr);

impl Block {
    /// The block holding `addr`, when it is in one of the private ranges.
    pub fn containing(addr: Ipv4Addr) -> Option<Block> {
        let b = Block(Ipv4Addr::from(u32::from(addr) & 0xffff_ff00));
        RANGES
            .iter()
            .any(|(net, len)| within(b.0, *net, *len))
            .then_some(b)
    }

    /// The network address (x.y.z.0).
    pub fn network(self) -> Ipv4Addr {
        self.0
    }

    /// The bridge's address (.1): router, DNS (when proxied) and server id.
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.0) | 1)
    }

    /// The clients' pool, inclusive (.2–.253, ConnMan's offset 2, size 252).
    pub fn pool(self) -> (Ipv4Addr, Ipv4Addr) {
        let n = u32::from(self.0);
        (Ipv4Addr::from(n | 2), Ipv4Addr::from(n | 253))
    }

    /// The bridge's address with the block's prefix.
    pub fn gateway_net(self) -> Ipv4Net {
        Ipv4Net {
            addr: self.gateway(),
            prefix_len: 24,
        }
    }

    /// Whether `addr` is in this block.
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        within(addr, self.0, 24)
    }

    /// Whether the network `net` (an address with its prefix) and this block share an address.
    pub fn overlaps(self, net: Ipv4Net) -> bool {
        // Both are aligned prefixes: they share an address exactly when the
        // shorter one holds the other's network.
        within(self.0, net.addr, net.prefix_len.min(24))
    }

    /// The block after this one in the walk order, wrapping at the end.
    fn next(self) -> Block {
        let n = u32::from(self.0);
        let range = RANGES
            .iter()
            .position(|(net, len)| within(self.0, *net, *len))
            .unwrap_or(0);
        let (net, len) = RANGES[range];
        let end = u32::from(net) | !crate::core::types::prefix_to_mask(len);
        if n.saturating_add(0x100) <= end & 0xffff_ff00 {
            Block(Ipv4Addr::from(n + 0x100))
        } else {
            Block(RANGES[(range + 1) % RANGES.len()].0)
        }
    }
}

impl std::fmt::Display for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/24", self.0)
    }
}

fn within(addr: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = crate::core::types::prefix_to_mask(len);
    u32::from(addr) & mask == u32::from(net) & mask
}

/// Blocks the walk looks at before giving up: every /24 of the three ranges
/// is 65 536 + 4 096 + 256 blocks; a device sees a handful of networks, so a
/// free one is found long before this.
const MAX_WALK: usize = 70_000;

/// The first block, from `start` on (the last one used, so a block moved away
/// from does not come straight back), that overlaps none of `used` (every
/// IPv4 network the device sees: its uplinks' and any other interface's).
/// None when every block is taken.
pub fn choose_block(used: &[Ipv4Net], start: Option<Block>) -> Option<Block> {
    let mut b = start.unwrap_or(Block(RANGES[0].0));
    for _ in 0..MAX_WALK {
        if !used.iter().any(|n| b.overlaps(*n)) {
            return Some(b);
        }
        b = b.next();
    }
    None
}

/// A technology's tethering settings (`Technology.Tethering*`), persisted in
/// the global settings file as ConnMan does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TetherSettings {
    /// `Tethering`: the user asked for it.
    pub enabled: bool,
    /// `TetheringIdentifier`: the access point's SSID (wifi).
    pub identifier: Option<String>,
    /// `TetheringPassphrase`: its WPA2 passphrase (wifi); never logged.
    pub passphrase: Option<crate::core::types::Secret>,
    /// `TetheringFreq`: its channel's frequency in MHz (wifi); 0 = the default.
    pub freq: u32,
}

/// Technologies that can be tethered, and why not the others.
pub fn can_tether(tech: Technology) -> Result<(), &'static str> {
    match tech {
        Technology::Ethernet | Technology::Gadget | Technology::Wifi => Ok(()),
        Technology::Cellular => Err("a modem's link cannot be shared with clients"),
    }
}

/// `TetheringIdentifier`: an SSID of 1 to 32 bytes (IEEE 802.11).
pub fn check_identifier(ssid: &str) -> Result<(), String> {
    if ssid.is_empty() || ssid.len() > 32 {
        return Err(format!(
            "an SSID has 1 to 32 bytes, not {} bytes",
            ssid.len()
        ));
    }
    Ok(())
}

/// `TetheringPassphrase`: a WPA2 passphrase (8–63 printable characters, or 64 hex digits).
pub fn check_passphrase(pass: &str) -> Result<(), String> {
    crate::core::tech::wifi::check_passphrase(crate::core::tech::wifi::Security::Psk, pass)
}

/// `TetheringFreq`: a 2.4 GHz or 5 GHz channel's centre frequency, or 0 (default).
pub fn check_freq(freq: i32) -> Result<u32, String> {
    match freq {
        0 | 2412..=2484 | 5160..=5885 => Ok(freq as u32),
        _ => Err(format!(
            "{freq} MHz is not a 2.4 GHz (2412–2484) or 5 GHz (5160–5885) channel"
        )),
    }
}

/// ConnMan's access point channel when `TetheringFreq` is not set: 2412 MHz (channel 1).
pub const DEFAULT_AP_FREQ: u32 = 2412;

/// The WiFi access point tethering wants of a radio (wpa_supplicant AP
/// mode, as ConnMan runs it): WPA2-PSK (RSN, CCMP) with a passphrase, open
/// without one. The supplicant's interface is made with the bridge as its
/// `BridgeIfname`, so EAPOL frames reach it once the radio is a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApSpec {
    pub ssid: String,
    pub passphrase: Option<crate::core::types::Secret>,
    /// MHz.
    pub freq: u32,
    pub bridge: String,
}

/// What tethering needs of the kernel and the tasks now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TetherPlan {
    /// The bridge's name (main.conf `TetheringBridge`).
    pub bridge: String,
    /// Interfaces that must be ports of the bridge (none yet while the
    /// WiFi access point starts: a radio is bridged once it is one).
    pub ports: Vec<u32>,
    /// The block in use.
    pub block: Block,
}

/// Tethering's plan, when some technology is tethered and has a device to
/// tether; None means no bridge, no NAT, no forwarding.
pub fn plan(model: &Model) -> Option<TetherPlan> {
    let block = model.tether.block?;
    if !model.tether_wanted() {
        return None;
    }
    let ports = model.tethered_ports();
    Some(TetherPlan {
        bridge: model.tether.bridge_name.clone(),
        ports,
        block,
    })
}

/// NAT: the tether block masqueraded out of every connected uplink (SPEC
/// §6a), not only the default one, so a client's flow keeps its uplink when
/// the default moves while that uplink still works.
pub fn masquerade(model: &Model) -> Vec<crate::core::firewall::Masquerade> {
    let Some(p) = plan(model) else {
        return Vec::new();
    };
    let mut out: Vec<crate::core::firewall::Masquerade> = crate::core::order::connected(model)
        .filter(|s| s.ipv4.is_some())
        .map(|s| crate::core::firewall::Masquerade {
            src: (p.block.network(), 24),
            oif: s.ifindex,
        })
        .collect();
    crate::sort::sort_by_key(&mut out, |m| m.oif);
    out.dedup();
    out
}

/// The fast path for the NATed flows: a flowtable on the bridge (once it
/// exists) and the uplinks the block is masqueraded out of; none when
/// main.conf says `TetheringFastPath=false`.
pub fn offload(
    model: &Model,
    masquerade: &[crate::core::firewall::Masquerade],
) -> Option<crate::core::firewall::Offload> {
    if !model.tether.fast_path {
        return None;
    }
    let first = masquerade.first()?;
    model.tether.bridge?;
    let mut devices = vec![model.tether.bridge_name.to_string()];
    for m in masquerade {
        let name = model
            .devices
            .iter()
            .find(|d| d.ifindex == m.oif)?
            .name
            .to_string();
        if !devices.contains(&name) {
            devices.push(name);
        }
    }
    devices.truncate(crate::core::firewall::MAX_OFFLOAD_DEVICES);
    Some(crate::core::firewall::Offload {
        devices,
        src: first.src,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Ipv4Net {
        let (a, l) = s.split_once('/').unwrap();
        Ipv4Net {
            addr: a.parse().unwrap(),
            prefix_len: l.parse().unwrap(),
        }
    }

    #[test]
    fn the_first_free_block_is_192_168_0_0() {
        assert_eq!(
            choose_block(&[], None).unwrap().to_string(),
            "192.168.0.0/24"
        );
        let b = choose_block(&[net("192.168.0.10/24")], None).unwrap();
        assert_eq!(b.to_string(), "192.168.1.0/24");
        assert_eq!(b.gateway(), Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(
            b.pool(),
            (
                Ipv4Addr::new(192, 168, 1, 2),
                Ipv4Addr::new(192, 168, 1, 253)
            )
        );
    }

    #[test]
    fn a_wide_uplink_network_skips_the_whole_range() {
        // An uplink on 192.168.0.0/16 takes every 192.168 block.
        let b = choose_block(&[net("192.168.7.3/16")], None).unwrap();
        assert_eq!(b.to_string(), "172.16.0.0/24");
        // A /30 inside 192.168.0.0/24 still takes that block.
        let b = choose_block(&[net("192.168.0.5/30")], None).unwrap();
        assert_eq!(b.to_string(), "192.168.1.0/24");
        // Starting in 10.0.0.0/8 with all of it taken wraps to 192.168.
        let b = choose_block(
            &[net("10.1.2.3/8")],
            Some(Block(Ipv4Addr::new(10, 0, 0, 0))),
        );
        assert_eq!(b.unwrap().to_string(), "192.168.0.0/24");
    }

    #[test]
    fn the_walk_starts_at_the_last_block_and_wraps() {
        let start = Block::containing(Ipv4Addr::new(192, 168, 255, 9)).unwrap();
        let b = choose_block(&[net("192.168.255.1/24")], Some(start)).unwrap();
        assert_eq!(b.to_string(), "172.16.0.0/24");
        let last = Block::containing(Ipv4Addr::new(10, 255, 255, 1)).unwrap();
        let b = choose_block(&[net("10.255.255.7/24")], Some(last)).unwrap();
        assert_eq!(b.to_string(), "192.168.0.0/24");
        assert_eq!(Block::containing(Ipv4Addr::new(8, 8, 8, 8)), None);
    }

    #[test]
    fn tethering_settings_are_checked_as_connman_checks_them() {
        assert!(check_identifier("").is_err());
        assert!(check_identifier(&"x".repeat(33)).is_err());
        assert!(check_identifier("pathman-ap").is_ok());
        assert!(check_passphrase("short").is_err());
        assert!(check_passphrase(&"p".repeat(64)).is_err());
        assert!(check_passphrase("longenough").is_ok());
        assert_eq!(check_freq(2412), Ok(2412));
        assert!(check_freq(1234).is_err());
        assert!(can_tether(Technology::Ethernet).is_ok());
        assert!(can_tether(Technology::Wifi).is_ok());
        assert!(can_tether(Technology::Cellular).is_err());
    }

    proptest! {
        #[test]
        fn a_chosen_block_overlaps_no_used_network(
            used in proptest::collection::vec((any::<u32>(), 8u8..=32), 0..40),
            start in proptest::option::of(any::<u32>()),
        ) {
            let used: Vec<Ipv4Net> = used
                .into_iter()
                .map(|(a, l)| Ipv4Net { addr: Ipv4Addr::from(a), prefix_len: l })
                .collect();
            let start = start.and_then(|a| Block::containing(Ipv4Addr::from(a)));
            let b = choose_block(&used, start).expect("40 networks cannot take every block");
            prop_assert!(Block::containing(b.gateway()) == Some(b));
            for n in &used {
                let n_net = u32::from(n.addr) & crate::core::types::prefix_to_mask(n.prefix_len);
                let n_last = n_net | !crate::core::types::prefix_to_mask(n.prefix_len);
                let b_first = u32::from(b.network());
                let b_last = b_first | 0xff;
                prop_assert!(n_last < b_first || n_net > b_last, "{b} overlaps {:?}", n);
            }
        }
    }
}
