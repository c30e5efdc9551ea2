//! The tethering DHCPv4 server: a sans-I/O machine (RFC 2131 §4.3) in the shape of the
//! client — [`Server::process`] takes a datagram received on port 67, [`Server::dispatch`]
//! hands out the replies with where each must go (§4.1), [`Server::poll_at`] says when
//! offers, leases and quarantines run out. Its socket is [`crate::edge::dhcp_server`].
//!
//! Bindings are keyed by the client identifier (option 61) when the client sends one,
//! else by chaddr. A DISCOVER is offered the client's binding, else its old address if
//! still free, else the address it asks for, else the next free one; the offer is held
//! so no one else gets that address meanwhile. Offers are not commitments: when every
//! free address is under offer (a DISCOVER flood from random MACs) a new DISCOVER takes
//! the oldest offer, so a flood cannot exhaust the pool for real clients, and bound
//! leases are never taken. A chaddr holds at most [`caps::DHCP_SERVER_MAX_PER_MAC`]
//! offers and leases together, however many client ids it invents. A DECLINEd address
//! is quarantined. Expired and released bindings are remembered, so a client comes back
//! to its address, and are given to others only when nothing else is free.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use crate::caps;
use crate::core::types::prefix_to_mask;
use crate::task::{Machine, Now, PollAt};
use crate::wire::dhcpv4::{AddrList, MessageType, OptionBytes, Packet, Repr};

/// What the server hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The server's own address: router (option 3) and server identifier (option 54).
    pub server: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix_len: u8,
    /// The pool, inclusive.
    pub pool: (Ipv4Addr, Ipv4Addr),
    /// DNS servers (option 6), at most [`caps::MAX_SERVERS`].
    pub dns: Vec<Ipv4Addr>,
    /// Domain name (option 15).
    pub domain: Option<String>,
    /// Interface MTU (option 26).
    pub mtu: Option<u16>,
    /// Lease time in seconds (option 51); T1 and T2 are 0.5 and 0.875 of it.
    pub lease_secs: u32,
}

/// Why a configuration cannot serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The prefix length is outside 8..=30.
    PrefixLength(u8),
    /// The pool is empty or reaches outside the server's subnet.
    Pool(Ipv4Addr, Ipv4Addr),
    /// A lease shorter than a minute.
    LeaseTime(u32),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::PrefixLength(l) => write!(f, "prefix length /{l} (want 8 to 30)"),
            ConfigError::Pool(a, b) => write!(f, "pool {a}-{b} is empty or outside the subnet"),
            ConfigError::LeaseTime(s) => write!(f, "lease time {s} s (want at least 30 s)"),
        }
    }
}

impl ServerConfig {
    fn check(&self) -> Result<(), ConfigError> {
        if !(8..=30).contains(&self.prefix_len) {
            return Err(ConfigError::PrefixLength(self.prefix_len));
        }
        let (a, b) = self.pool;
        if u32::from(a) > u32::from(b) || !self.in_subnet(a) || !self.in_subnet(b) {
            return Err(ConfigError::Pool(a, b));
        }
        if self.lease_secs < 30 {
            return Err(ConfigError::LeaseTime(self.lease_secs));
        }
        Ok(())
    }

    fn in_subnet(&self, a: Ipv4Addr) -> bool {
        let m = prefix_to_mask(self.prefix_len);
        u32::from(a) & m == u32::from(self.server) & m
    }

    /// An address the pool may give: in the pool, not the server's own, not the
    /// subnet's network or broadcast address.
    fn assignable(&self, a: Ipv4Addr) -> bool {
        let n = u32::from(a);
        let m = prefix_to_mask(self.prefix_len);
        n >= u32::from(self.pool.0)
            && n <= u32::from(self.pool.1)
            && a != self.server
            && n & !m != 0
            && n & !m != !m
            && self.in_subnet(a)
    }
}

/// Who a binding belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    /// Option 61, as sent (type byte first).
    Id(Vec<u8>),
    /// chaddr, for clients without option 61.
    Mac([u8; 6]),
}

/// An address bound to a client; expired (or released) bindings are kept as the
/// client's remembered address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub addr: Ipv4Addr,
    pub key: ClientKey,
    pub mac: [u8; 6],
    /// When the lease ends (monotonic); in the past for a remembered address.
    pub expires: Instant,
    /// Option 12, when it was printable text.
    pub hostname: Option<String>,
}

impl Binding {
    /// Whether the lease still runs at `now`.
    pub fn active(&self, now: Instant) -> bool {
        self.expires > now
    }
}

#[derive(Debug, Clone)]
struct Offer {
    addr: Ipv4Addr,
    key: ClientKey,
    mac: [u8; 6],
    until: Instant,
}

/// A datagram received on port 67.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub bytes: Vec<u8>,
    pub src: SocketAddrV4,
}

/// Where a reply goes (RFC 2131 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To the relay agent (giaddr), port 67.
    Relay(Ipv4Addr),
    /// To the client's address (ciaddr), port 68.
    Unicast(Ipv4Addr),
    /// To 255.255.255.255:68 (the client asked, or a NAK).
    Broadcast,
    /// To the client's MAC and the address it is given (it has no address yet).
    Frame { mac: [u8; 6], ip: Ipv4Addr },
}

/// A reply: the DHCP message and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub dst: Destination,
}

/// What the server tells the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The bindings changed (persist them); the MACs of the clients bound now.
    LeasesChanged { clients: Vec<[u8; 6]> },
}

/// Counters for the dump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub offers: u64,
    pub acks: u64,
    pub naks: u64,
    pub declines: u64,
    pub releases: u64,
    pub dropped: u64,
    pub exhausted: u64,
}

/// `received N offers N acks N naks N declines N releases N dropped N exhausted N`: the
/// dump's line.
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received {} offers {} acks {} naks {} declines {} releases {} dropped {} exhausted {}",
            self.received,
            self.offers,
            self.acks,
            self.naks,
            self.declines,
            self.releases,
            self.dropped,
            self.exhausted
        )
    }
}

/// Log lines allowed per second (a flood of bad packets logs a count, not each one).
const LOG_PER_SEC: u32 = 5;

/// The server.
#[derive(Debug)]
pub struct Server {
    cfg: ServerConfig,
    bindings: Vec<Binding>,
    offers: Vec<Offer>,
    quarantine: Vec<(Ipv4Addr, Instant)>,
    out: VecDeque<Reply>,
    changed: bool,
    stats: Stats,
    log_tokens: u32,
    log_second: Option<Instant>,
    suppressed: u64,
    /// The time of the last step: leases that ended since are reported.
    last: Option<Instant>,
    /// When the last [`Event::LeasesChanged`] went out: changes are reported at most
    /// every [`caps::DHCP_SERVER_EVENT_GAP_MS`], so a burst of clients is one leases-file
    /// write and one model update, not one per message.
    reported: Option<Instant>,
}

impl Server {
    /// A server for `cfg`, starting from `leases` (the leases file: bindings outside the
    /// pool or doubled are dropped).
    pub fn new(cfg: ServerConfig, leases: Vec<Binding>, _now: &Now) -> Result<Server, ConfigError> {
        cfg.check()?;
        let mut s = Server {
            cfg,
            bindings: Vec::new(),
            offers: Vec::new(),
            quarantine: Vec::new(),
            out: VecDeque::new(),
            changed: false,
            stats: Stats::default(),
            log_tokens: LOG_PER_SEC,
            log_second: None,
            suppressed: 0,
            last: None,
            reported: None,
        };
        for b in leases {
            let dup = s
                .bindings
                .iter()
                .any(|x| x.addr == b.addr || x.key == b.key);
            if s.cfg.assignable(b.addr) && !dup && s.bindings.len() < s.pool_size() {
                s.bindings.push(b);
            }
        }
        Ok(s)
    }

    /// Every binding, remembered ones included.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// MACs of the clients whose lease runs at `now`.
    pub fn clients(&self, now: Instant) -> Vec<[u8; 6]> {
        let mut v: Vec<[u8; 6]> = self
            .bindings
            .iter()
            .filter(|b| b.active(now))
            .map(|b| b.mac)
            .collect();
        crate::sort::sort(&mut v);
        v.dedup();
        v
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The configuration served.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// When a pending change may be reported, if not yet (None: now).
    fn report_due(&self) -> Option<Instant> {
        let gap = Duration::from_millis(caps::DHCP_SERVER_EVENT_GAP_MS);
        let due = self.reported? + gap;
        (self.last.is_none_or(|now| now < due)).then_some(due)
    }

    fn pool_size(&self) -> usize {
        (u32::from(self.cfg.pool.1) - u32::from(self.cfg.pool.0) + 1) as usize
    }

    fn log(&mut self, now: Instant, level: log::Level, msg: std::fmt::Arguments<'_>) {
        let second = self.log_second.get_or_insert(now);
        if now.saturating_duration_since(*second) >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                log::warn!(
                    "dhcp server: {} more messages not logged in the last second",
                    self.suppressed
                );
            }
            *second = now;
            self.log_tokens = LOG_PER_SEC;
            self.suppressed = 0;
        }
        if self.log_tokens == 0 {
            self.suppressed += 1;
            return;
        }
        self.log_tokens -= 1;
        log::log!(level, "dhcp server: {msg}");
    }

    fn drop_msg(&mut self, now: Instant, why: std::fmt::Arguments<'_>) {
        self.stats.dropped += 1;
        self.log(now, log::Level::Debug, why);
    }

    /// Forgets offers, quarantines that ran out; notes leases that ended.
    fn expire(&mut self, now: Instant) {
        self.offers.retain(|o| o.until > now);
        self.quarantine.retain(|(_, t)| *t > now);
        if let Some(last) = self.last {
            if self
                .bindings
                .iter()
                .any(|b| b.expires > last && b.expires <= now)
            {
                self.changed = true;
            }
        }
        self.last = Some(self.last.map_or(now, |l| l.max(now)));
    }

    fn quarantined(&self, a: Ipv4Addr) -> bool {
        self.quarantine.iter().any(|(q, _)| *q == a)
    }

    /// Whether `a` may be given to `key` now: assignable, not quarantined, not bound
    /// (even remembered) or offered to anyone else.
    fn free_for(&self, a: Ipv4Addr, key: &ClientKey) -> bool {
        self.cfg.assignable(a)
            && !self.quarantined(a)
            && !self.bindings.iter().any(|b| b.addr == a && b.key != *key)
            && !self.offers.iter().any(|o| o.addr == a && o.key != *key)
    }

    /// Offers and running leases of one chaddr under other keys.
    fn held_by_mac(&self, mac: [u8; 6], key: &ClientKey, now: Instant) -> usize {
        self.offers
            .iter()
            .filter(|o| o.mac == mac && o.key != *key)
            .count()
            + self
                .bindings
                .iter()
                .filter(|b| b.mac == mac && b.key != *key && b.active(now))
                .count()
    }

    /// The address to offer `key`, per §4.3.1, or None when the pool is exhausted.
    fn pick(
        &mut self,
        key: &ClientKey,
        requested: Option<Ipv4Addr>,
        now: Instant,
    ) -> Option<Ipv4Addr> {
        if let Some(o) = self.offers.iter().find(|o| o.key == *key) {
            return Some(o.addr);
        }
        if let Some(b) = self.bindings.iter().find(|b| b.key == *key) {
            if self.free_for(b.addr, key) {
                return Some(b.addr);
            }
        }
        if let Some(r) = requested {
            if self.free_for(r, key) {
                return Some(r);
            }
        }
        let (lo, hi) = (u32::from(self.cfg.pool.0), u32::from(self.cfg.pool.1));
        if let Some(a) = (lo..=hi)
            .map(Ipv4Addr::from)
            .find(|a| self.free_for(*a, key))
        {
            return Some(a);
        }
        // Nothing free: the oldest remembered address of another client…
        let remembered = self
            .bindings
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.active(now) && !self.quarantined(b.addr))
            .filter(|(_, b)| !self.offers.iter().any(|o| o.addr == b.addr))
            .min_by_key(|(_, b)| b.expires)
            .map(|(i, _)| i);
        if let Some(i) = remembered {
            let b = self.bindings.remove(i);
            self.changed = true;
            return Some(b.addr);
        }
        // …else the oldest offer: an offer is no promise, a flood must not starve clients.
        let oldest = self
            .offers
            .iter()
            .enumerate()
            .min_by_key(|(_, o)| o.until)
            .map(|(i, _)| i)?;
        Some(self.offers.remove(oldest).addr)
    }

    fn bind(
        &mut self,
        key: &ClientKey,
        mac: [u8; 6],
        addr: Ipv4Addr,
        hostname: Option<String>,
        now: Instant,
    ) {
        self.offers.retain(|o| o.key != *key && o.addr != addr);
        self.bindings.retain(|b| b.key == *key || b.addr != addr);
        let expires = now + Duration::from_secs(u64::from(self.cfg.lease_secs));
        match self.bindings.iter_mut().find(|b| b.key == *key) {
            Some(b) => {
                b.addr = addr;
                b.mac = mac;
                b.expires = expires;
                if hostname.is_some() {
                    b.hostname = hostname;
                }
            }
            None => self.bindings.push(Binding {
                addr,
                key: key.clone(),
                mac,
                expires,
                hostname,
            }),
        }
        self.changed = true;
    }

    fn key_of(&mut self, repr: &Repr<'_>, now: Instant) -> Option<ClientKey> {
        match repr.client_identifier {
            Some(id) if id.len() > caps::DHCP_SERVER_MAX_CLIENT_ID => {
                self.drop_msg(
                    now,
                    format_args!(
                        "client id of {} bytes from {} (cap {})",
                        id.len(),
                        mac_text(repr.client_hardware_address),
                        caps::DHCP_SERVER_MAX_CLIENT_ID
                    ),
                );
                None
            }
            Some(id) => Some(ClientKey::Id(id.bytes().collect())),
            None => Some(ClientKey::Mac(repr.client_hardware_address)),
        }
    }

    fn handle(&mut self, repr: &Repr<'_>, now: Instant) {
        let Some(key) = self.key_of(repr, now) else {
            return;
        };
        let mac = repr.client_hardware_address;
        let ours = repr.server_identifier.map(|s| s == self.cfg.server);
        match repr.message_type {
            MessageType::Discover => {
                if self.held_by_mac(mac, &key, now) >= caps::DHCP_SERVER_MAX_PER_MAC {
                    self.drop_msg(
                        now,
                        format_args!(
                            "DISCOVER from {} ignored: it holds {} offers and leases already",
                            mac_text(mac),
                            caps::DHCP_SERVER_MAX_PER_MAC
                        ),
                    );
                    return;
                }
                let Some(addr) = self.pick(&key, repr.requested_ip, now) else {
                    self.stats.exhausted += 1;
                    self.log(
                        now,
                        log::Level::Warn,
                        format_args!(
                            "pool exhausted, DISCOVER from {} not answered",
                            mac_text(mac)
                        ),
                    );
                    return;
                };
                self.offers.retain(|o| o.key != key);
                self.offers.push(Offer {
                    addr,
                    key,
                    mac,
                    until: now + Duration::from_secs(caps::DHCP_SERVER_OFFER_HOLD_SECS),
                });
                self.stats.offers += 1;
                self.reply(repr, MessageType::Offer, addr);
            }
            MessageType::Request => self.request(repr, key, ours, now),
            MessageType::Decline => {
                let Some(addr) = repr.requested_ip else {
                    return self.drop_msg(now, format_args!("DECLINE without an address"));
                };
                if ours == Some(false) {
                    return;
                }
                let known = self.bindings.iter().any(|b| b.key == key && b.addr == addr)
                    || self.offers.iter().any(|o| o.key == key && o.addr == addr);
                if !known {
                    return self.drop_msg(
                        now,
                        format_args!("DECLINE of {addr} from {}, not its address", mac_text(mac)),
                    );
                }
                self.bindings.retain(|b| !(b.key == key && b.addr == addr));
                self.offers.retain(|o| o.addr != addr);
                self.quarantine.push((
                    addr,
                    now + Duration::from_secs(caps::DHCP_SERVER_QUARANTINE_SECS),
                ));
                self.stats.declines += 1;
                self.changed = true;
                self.log(
                    now,
                    log::Level::Warn,
                    format_args!(
                        "{} declined {addr} (in use on the link?): not given out for {} s",
                        mac_text(mac),
                        caps::DHCP_SERVER_QUARANTINE_SECS
                    ),
                );
            }
            MessageType::Release => {
                if ours == Some(false) {
                    return;
                }
                let ci = repr.client_ip;
                if let Some(b) = self
                    .bindings
                    .iter_mut()
                    .find(|b| b.key == key && b.addr == ci && b.expires > now)
                {
                    // Remembered: the client gets it back next time.
                    b.expires = now;
                    self.stats.releases += 1;
                    self.changed = true;
                    log::info!("dhcp server: {} released {ci}", mac_text(mac));
                }
            }
            MessageType::Inform => {
                if repr.client_ip.is_unspecified() || !self.cfg.in_subnet(repr.client_ip) {
                    return self.drop_msg(now, format_args!("INFORM without a ciaddr of ours"));
                }
                self.stats.acks += 1;
                self.reply(repr, MessageType::Ack, Ipv4Addr::UNSPECIFIED);
            }
            MessageType::Offer | MessageType::Ack | MessageType::Nak => {
                self.drop_msg(now, format_args!("a server's message from a client"));
            }
        }
    }

    /// DHCPREQUEST in SELECTING, INIT-REBOOT, RENEWING or REBINDING (§4.3.2).
    fn request(&mut self, repr: &Repr<'_>, key: ClientKey, ours: Option<bool>, now: Instant) {
        let mac = repr.client_hardware_address;
        let hostname = hostname_of(repr);
        match (ours, repr.requested_ip, repr.client_ip.is_unspecified()) {
            // SELECTING, another server chosen: forget our offer, say nothing.
            (Some(false), _, _) => {
                self.offers.retain(|o| o.key != key);
            }
            // SELECTING, us.
            (Some(true), requested, _) => {
                let want = requested.unwrap_or(repr.client_ip);
                let offered = self.offers.iter().any(|o| o.key == key && o.addr == want);
                let bound = self
                    .bindings
                    .iter()
                    .any(|b| b.key == key && b.addr == want && b.active(now));
                if (offered || bound) && self.free_for(want, &key) {
                    self.bind(&key, mac, want, hostname, now);
                    self.ack(repr, want);
                } else {
                    self.nak(repr, now, format_args!("{want} is no longer offered to it"));
                }
            }
            // INIT-REBOOT: the client's remembered address.
            (None, Some(r), true) => {
                if !self.cfg.in_subnet(r) {
                    return self.nak(repr, now, format_args!("{r} is not on this network"));
                }
                let mine = self.bindings.iter().find(|b| b.key == key).map(|b| b.addr);
                match mine {
                    Some(a) if a == r && self.free_for(r, &key) => {
                        self.bind(&key, mac, r, hostname, now);
                        self.ack(repr, r);
                    }
                    Some(_) => self.nak(repr, now, format_args!("{r} is not its address")),
                    // No record (a leases file lost): a free pool address is granted;
                    // else silence, as §4.3.2 asks of a server without a record.
                    None if self.free_for(r, &key) => {
                        self.bind(&key, mac, r, hostname, now);
                        self.ack(repr, r);
                    }
                    None if self.bindings.iter().any(|b| b.addr == r && b.active(now)) => {
                        self.nak(repr, now, format_args!("{r} is another client's"))
                    }
                    None => {}
                }
            }
            // RENEWING (unicast) or REBINDING (broadcast): ciaddr is the lease.
            (None, None, false) => {
                let ci = repr.client_ip;
                if !self.cfg.in_subnet(ci) {
                    // The block moved (an uplink landed in it): into the new one.
                    return self.nak(repr, now, format_args!("{ci} is not on this network"));
                }
                let mine = self.bindings.iter().any(|b| b.key == key && b.addr == ci);
                if (mine || self.bindings.iter().all(|b| b.addr != ci)) && self.free_for(ci, &key) {
                    self.bind(&key, mac, ci, hostname, now);
                    self.ack(repr, ci);
                } else {
                    self.nak(repr, now, format_args!("{ci} is not its lease"));
                }
            }
            _ => self.drop_msg(now, format_args!("REQUEST in no state RFC 2131 names")),
        }
    }

    fn ack(&mut self, repr: &Repr<'_>, addr: Ipv4Addr) {
        self.stats.acks += 1;
        self.reply(repr, MessageType::Ack, addr);
    }

    fn nak(&mut self, repr: &Repr<'_>, now: Instant, why: std::fmt::Arguments<'_>) {
        self.stats.naks += 1;
        let mac = mac_text(repr.client_hardware_address);
        self.log(now, log::Level::Info, format_args!("NAK to {mac}: {why}"));
        let mut r = Repr::new(
            MessageType::Nak,
            repr.transaction_id,
            repr.client_hardware_address,
        );
        r.server_identifier = Some(self.cfg.server);
        r.relay_agent_ip = repr.relay_agent_ip;
        r.broadcast = !repr.relay_agent_ip.is_unspecified();
        r.client_identifier = repr.client_identifier;
        let dst = if repr.relay_agent_ip.is_unspecified() {
            Destination::Broadcast
        } else {
            Destination::Relay(repr.relay_agent_ip)
        };
        self.emit(&r, dst);
    }

    /// An OFFER or ACK (yiaddr `addr`; INFORM's ACK has none and no lease time).
    fn reply(&mut self, repr: &Repr<'_>, kind: MessageType, addr: Ipv4Addr) {
        let inform = repr.message_type == MessageType::Inform;
        let mut r = Repr::new(kind, repr.transaction_id, repr.client_hardware_address);
        r.your_ip = addr;
        r.client_ip = repr.client_ip;
        r.broadcast = repr.broadcast;
        r.relay_agent_ip = repr.relay_agent_ip;
        r.server_identifier = Some(self.cfg.server);
        r.subnet_mask = Some(Ipv4Addr::from(prefix_to_mask(self.cfg.prefix_len)));
        let router = self.cfg.server.octets();
        r.routers = AddrList::new(crate::wire::dhcpv4::opt::ROUTER, &router).ok();
        let dns: Vec<u8> = self
            .cfg
            .dns
            .iter()
            .take(caps::MAX_SERVERS)
            .flat_map(|a| a.octets())
            .collect();
        r.dns_servers = AddrList::new(crate::wire::dhcpv4::opt::DNS, &dns).ok();
        let domain = self.cfg.domain.clone();
        r.domain_name = domain
            .as_deref()
            .filter(|d| !d.is_empty() && d.len() <= 255)
            .map(|d| OptionBytes::new(d.as_bytes()));
        r.mtu = self.cfg.mtu;
        if !inform {
            let lease = self.cfg.lease_secs;
            r.lease_duration = Some(lease);
            r.renew_duration = Some(lease / 2);
            r.rebind_duration = Some((u64::from(lease) * 7 / 8) as u32);
        }
        r.client_identifier = repr.client_identifier;
        let dst = if !repr.relay_agent_ip.is_unspecified() {
            Destination::Relay(repr.relay_agent_ip)
        } else if !repr.client_ip.is_unspecified() {
            Destination::Unicast(repr.client_ip)
        } else if repr.broadcast {
            Destination::Broadcast
        } else {
            Destination::Frame {
                mac: repr.client_hardware_address,
                ip: addr,
            }
        };
        self.emit(&r, dst);
    }

    fn emit(&mut self, r: &Repr<'_>, dst: Destination) {
        let mut bytes = vec![0u8; r.buffer_len()];
        if r.emit(&mut Packet::new_unchecked(&mut bytes[..])).is_ok()
            && self.out.len() < caps::DHCP_SERVER_MAX_QUEUED
        {
            self.out.push_back(Reply { bytes, dst });
        }
    }
}

fn hostname_of(repr: &Repr<'_>) -> Option<String> {
    let h = repr.hostname?;
    if h.len() > 63 {
        return None;
    }
    let text: Vec<u8> = h.bytes().collect();
    let ok = text
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.' || *b == b'_');
    ok.then(|| String::from_utf8(text).ok()).flatten()
}

fn mac_text(m: [u8; 6]) -> String {
    crate::core::types::mac_text(&m)
}

impl Machine for Server {
    type Input = Datagram;
    type Output = Reply;
    type Event = Event;
    type Config = ServerConfig;

    fn poll_at(&self) -> PollAt {
        if !self.out.is_empty() {
            return PollAt::Now;
        }
        if self.changed {
            return match self.report_due() {
                None => PollAt::Now,
                Some(t) => PollAt::At(t),
            };
        }
        let last = self.last;
        let next = self
            .offers
            .iter()
            .map(|o| o.until)
            .chain(self.quarantine.iter().map(|(_, t)| *t))
            .chain(
                self.bindings
                    .iter()
                    .map(|b| b.expires)
                    .filter(|e| last.is_none_or(|l| *e > l)),
            )
            .min();
        next.map_or(PollAt::Idle, PollAt::At)
    }

    fn dispatch(&mut self, now: &Now) -> Option<Reply> {
        self.expire(now.mono);
        self.out.pop_front()
    }

    fn process(&mut self, now: &Now, input: Datagram) {
        self.stats.received += 1;
        self.expire(now.mono);
        let packet = match Packet::new_checked(&input.bytes[..]) {
            Ok(p) => p,
            Err(e) => {
                return self.drop_msg(now.mono, format_args!("from {}: {e:?}", input.src));
            }
        };
        match Repr::parse(&packet) {
            Ok(repr) => self.handle(&repr, now.mono),
            Err(e) => self.drop_msg(now.mono, format_args!("from {}: {e:?}", input.src)),
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        if !self.changed || self.report_due().is_some() {
            return None;
        }
        self.changed = false;
        self.reported = self.last;
        let clients = self.last.map(|now| self.clients(now)).unwrap_or_default();
        Some(Event::LeasesChanged { clients })
    }

    fn reconfigure(&mut self, config: ServerConfig) {
        // Same block (a new one restarts the machine): new DNS, domain, MTU, lease time.
        if config.check().is_ok() {
            self.cfg = config;
        }
    }
}

#[cfg(test)]
mod tests;
