//! Sans-I/O DHCPv4 client (RFC 2131), shaped like smoltcp's `socket/dhcpv4.rs`.
//!
//! No socket and no clock inside: the caller feeds parsed messages with [`Client::process`]
//! and ARP seen on the link with [`Client::process_arp`], asks [`Client::poll_at`] when to
//! call [`Client::dispatch`] and [`Client::dispatch_arp`] next, sends what they return, and
//! drains [`Client::poll_event`].
//!
//! Nothing a server sends reaches the owner unchecked: offers and ACKs with an unusable
//! address or mask are dropped, bad routers/servers/names are left out of the lease
//! ([`crate::dhcp::lease`]), lease times are floored, repeated NAKs back off, and (with
//! [`ConflictDetection::On`]) a new address is only reported once ARP probes found no other
//! host on it; a taken address is declined.

use crate::caps::{
    DHCP_DECLINE_RESTART_SECS, DHCP_MAX_MESSAGE_SIZE, DHCP_MIN_LEASE_SECS, DHCP_MIN_RENEW_SECS,
    DHCP_NAK_QUICK_RESTARTS, DHCP_REBOOT_RETRIES, DHCP_RENEW_MIN_RETRY_SECS, DHCP_REQUEST_RETRIES,
    DHCP_RETRY_INITIAL_SECS, DHCP_RETRY_JITTER_MS, DHCP_RETRY_MAX_SECS, MAX_DNS_SERVERS,
    MAX_DOMAIN_LEN, MAX_HOSTNAME_LEN, MAX_NTP_SERVERS,
};
use crate::dhcp::acd::{ConflictDetection, Outcome, Probe};
use crate::dhcp::lease::valid_name;
use crate::dhcp::lease::{check_address, check_lease, check_router, check_server, prefix_of};
use crate::dhcp::Prng;
use crate::wire::arp;
use crate::wire::dhcpv4::{opt, AddrList, MessageType, OptionBytes, Repr};
use heapless::{Deque, String, Vec};
use log::{debug, info, warn};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Interface name as kept for log lines.
pub use crate::core::types::IfName;

/// Options we ask servers for (option 55).
const PARAMETER_REQUEST_LIST: [u8; 11] = [
    opt::SUBNET_MASK,
    opt::ROUTER,
    opt::DNS,
    opt::HOSTNAME,
    opt::DOMAIN_NAME,
    opt::MTU,
    opt::NTP,
    opt::LEASE_TIME,
    opt::SERVER_ID,
    opt::RENEWAL_TIME,
    opt::REBINDING_TIME,
];

/// Lease time meaning "infinite" (RFC 2132 §9.2).
const INFINITE_LEASE: u32 = u32::MAX;

/// A lease as accepted from a DHCPACK, every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Leased address (yiaddr): ordinary unicast, not the subnet's network or broadcast
    /// address, not the server's.
    pub address: Ipv4Addr,
    /// Prefix length from option 1 (contiguous, at least `DHCP_MIN_PREFIX_LEN`).
    pub prefix_len: u8,
    /// Default router: the first of option 3 that is unicast, not ours, and on the subnet
    /// (any unicast for a /31 or /32); absent when none is.
    pub router: Option<Ipv4Addr>,
    /// DNS servers (option 6), unicast only, at most [`MAX_DNS_SERVERS`].
    pub dns_servers: Vec<Ipv4Addr, MAX_DNS_SERVERS>,
    /// Domain name (option 15), a valid name or empty.
    pub domain_name: String<MAX_DOMAIN_LEN>,
    /// Host name (option 12), a valid name or empty.
    pub hostname: String<MAX_HOSTNAME_LEN>,
    /// NTP servers (option 42), unicast only, at most [`MAX_NTP_SERVERS`].
    pub ntp_servers: Vec<Ipv4Addr, MAX_NTP_SERVERS>,
    /// Interface MTU (option 26).
    pub mtu: Option<u16>,
    /// Lease time in seconds, at least `DHCP_MIN_LEASE_SECS`; `u32::MAX` is infinite.
    pub lease_secs: u32,
    /// T1 in seconds after `acquired_at` (at least `DHCP_MIN_RENEW_SECS`, below T2).
    pub renew_secs: u32,
    /// T2 in seconds after `acquired_at` (below the lease time).
    pub rebind_secs: u32,
    /// Server identifier (option 54).
    pub server_id: Ipv4Addr,
    /// When the ACK was processed; lease times count from here.
    pub acquired_at: Instant,
}

impl Lease {
    fn at(&self, secs: u32) -> Option<Instant> {
        if self.lease_secs == INFINITE_LEASE {
            return None;
        }
        self.acquired_at
            .checked_add(Duration::from_secs(u64::from(secs)))
    }
    /// When RENEWING starts (None for an infinite lease).
    pub fn renew_at(&self) -> Option<Instant> {
        self.at(self.renew_secs)
    }
    /// When REBINDING starts (None for an infinite lease).
    pub fn rebind_at(&self) -> Option<Instant> {
        self.at(self.rebind_secs)
    }
    /// When the lease expires (None for an infinite lease).
    pub fn expires_at(&self) -> Option<Instant> {
        self.at(self.lease_secs)
    }
}

/// What the client reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new lease (new address): configure it.
    Configured(Lease),
    /// The same address with new times/options.
    Renewed(Lease),
    /// The lease is gone (expired, NAK, released): remove the address.
    Deconfigured,
}

/// RFC 2131 client states, plus `Probing`, `Declined` and `Released`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// About to send the first DISCOVER.
    Init,
    /// DISCOVER sent, waiting for an OFFER.
    Selecting,
    /// REQUEST for an offer sent, waiting for ACK/NAK (the offered address is probed
    /// meanwhile).
    Requesting,
    /// REQUEST for a remembered address sent (the address is probed meanwhile).
    InitReboot,
    /// ACK in, waiting for the ARP probe window to end before reporting the address.
    Probing,
    /// The address was taken by another host: DECLINE sent, waiting before INIT.
    Declined,
    /// Lease held, waiting for T1.
    Bound,
    /// Unicasting REQUESTs to the leasing server.
    Renewing,
    /// Broadcasting REQUESTs to any server.
    Rebinding,
    /// Released; the client does nothing further.
    Released,
}

pub use crate::task::PollAt;

/// Where an outgoing message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255 (link broadcast).
    Broadcast,
    /// A server's address.
    Unicast(Ipv4Addr),
}

/// How an outgoing message must be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Hand-built IPv4+UDP on the packet socket (no usable address yet, or REBINDING).
    Raw,
    /// The UDP socket bound to the leased address (RENEWING, RELEASE).
    Udp,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    /// The DHCP payload.
    pub repr: Repr<'a>,
    /// IPv4 source (0.0.0.0 or the leased address).
    pub src: Ipv4Addr,
    /// IPv4 destination.
    pub dst: Destination,
    /// Which socket.
    pub transport: Transport,
}

impl Outgoing<'_> {
    /// The destination as an address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        match self.dst {
            Destination::Broadcast => Ipv4Addr::BROADCAST,
            Destination::Unicast(a) => a,
        }
    }
}

/// The DHCPv4 client state machine.
#[derive(Debug)]
pub struct Client {
    ifname: IfName,
    mac: [u8; 6],
    client_id: [u8; 7],
    rng: Prng,
    state: State,
    next: PollAt,
    xid: u32,
    retries: u32,
    acquiring_since: Option<Instant>,
    offer: Option<(Ipv4Addr, Ipv4Addr)>,
    reboot_addr: Option<Ipv4Addr>,
    lease: Option<Lease>,
    discovers_unanswered: u32,
    /// NAKs since the last lease was bound (drives the NAK backoff).
    naks: u32,
    detection: ConflictDetection,
    /// ARP probe of the offered, remembered or acknowledged address.
    probe: Option<Probe>,
    /// The ACKed lease waiting for the probe (state `Probing`).
    pending: Option<Lease>,
    /// (server, address) of the DECLINE still to send (state `Declined`).
    decline: Option<(Ipv4Addr, Ipv4Addr)>,
    events: Deque<Event, 4>,
}

/// T1 and T2 for a lease of `lease` seconds (floored to `DHCP_MIN_LEASE_SECS` by the
/// caller) and the server's options:
/// RFC 2131 §4.4.5 defaults (1/2 and 7/8) unless the server's values keep
/// `DHCP_MIN_RENEW_SECS <= T1 < T2 < lease`.
fn timers(lease: u32, t1: Option<u32>, t2: Option<u32>) -> (u32, u32) {
    if lease == INFINITE_LEASE {
        return (INFINITE_LEASE, INFINITE_LEASE);
    }
    let t2 = match t2 {
        Some(t) if t > DHCP_MIN_RENEW_SECS && t < lease => t,
        _ => (u64::from(lease) * 7 / 8) as u32,
    };
    let t1 = match t1 {
        Some(t) if t >= DHCP_MIN_RENEW_SECS && t < t2 => t,
        _ => (lease / 2)
            .min(t2.saturating_sub(1))
            .max(DHCP_MIN_RENEW_SECS),
    };
    (t1, t2)
}

fn copy_servers<const N: usize>(
    ifname: &str,
    what: &str,
    list: Option<AddrList<'_>>,
) -> Vec<Ipv4Addr, N> {
    let mut out = Vec::new();
    for a in list.iter().flat_map(|l| l.iter()) {
        if let Err(why) = check_server(a) {
            warn!("{ifname}: DHCP {what} server {a} dropped: {why}");
            continue;
        }
        if out.contains(&a) {
            continue;
        }
        if out.push(a).is_err() {
            info!("{ifname}: DHCP {what} servers beyond {N} ignored");
            break;
        }
    }
    out
}

fn copy_name<const N: usize>(ifname: &str, what: &str, raw: Option<OptionBytes<'_>>) -> String<N> {
    let mut out = String::new();
    let Some(raw) = raw else { return out };
    // Room for N bytes plus the trailing dot and NUL `valid_name` drops.
    let mut buf = [0u8; 255];
    let name = raw.copy_into(&mut buf).and_then(|b| valid_name(b, N));
    match name {
        Some(s) if out.push_str(s).is_ok() => {}
        _ => {
            out.clear();
            warn!("{ifname}: DHCP {what} dropped: not a valid name of at most {N} bytes");
        }
    }
    out
}

impl Client {
    /// A client for interface `ifname` with hardware address `mac`; `seed` feeds the PRNG
    /// (xids, jitter); `remembered` starts in INIT-REBOOT with that address; `detection`
    /// says whether new addresses are probed with ARP first.
    pub fn new(
        ifname: IfName,
        mac: [u8; 6],
        seed: u32,
        remembered: Option<Ipv4Addr>,
        detection: ConflictDetection,
    ) -> Self {
        let mut client_id = [1u8; 7];
        client_id[1..].copy_from_slice(&mac);
        let mut rng = Prng::new(seed);
        let xid = rng.next_u32();
        Client {
            ifname,
            mac,
            client_id,
            rng,
            state: if remembered.is_some() {
                State::InitReboot
            } else {
                State::Init
            },
            next: PollAt::Now,
            xid,
            retries: 0,
            acquiring_since: None,
            offer: None,
            reboot_addr: remembered,
            lease: None,
            discovers_unanswered: 0,
            naks: 0,
            detection,
            probe: None,
            pending: None,
            decline: None,
            events: Deque::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The lease held, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// DISCOVERs sent since the last OFFER (drives the IPv4LL fallback).
    pub fn discovers_unanswered(&self) -> u32 {
        self.discovers_unanswered
    }

    /// Whether an ARP probe runs (so the owner needs an ARP socket).
    pub fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// When to call [`Client::dispatch`] / [`Client::dispatch_arp`] next.
    pub fn poll_at(&self) -> PollAt {
        self.next
            .min(self.probe.as_ref().map_or(PollAt::Idle, Probe::poll_at))
    }

    /// Next pending event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn push_event(&mut self, e: Event) {
        if self.events.is_full() {
            // The owner drains after every call, so this only loses history no one read.
            self.events.pop_front();
        }
        let _ = self.events.push_back(e);
    }

    fn due(&self, now: Instant) -> bool {
        match self.next {
            PollAt::Now => true,
            PollAt::At(t) => now >= t,
            PollAt::Idle => false,
        }
    }

    fn backoff(&mut self, now: Instant) -> Instant {
        let exp = self.retries.saturating_sub(1).min(8);
        let secs = (DHCP_RETRY_INITIAL_SECS << exp).min(DHCP_RETRY_MAX_SECS);
        let jitter = u64::from(self.rng.below(2 * DHCP_RETRY_JITTER_MS as u32 + 1));
        let ms = (secs * 1000 + jitter).saturating_sub(DHCP_RETRY_JITTER_MS);
        now + Duration::from_millis(ms)
    }

    /// RFC 2131 §4.4.5: wait half the remaining time, at least 60 s, never past `limit`.
    fn half_way(now: Instant, limit: Instant) -> Instant {
        let half = limit.saturating_duration_since(now) / 2;
        let wait = half.max(Duration::from_secs(DHCP_RENEW_MIN_RETRY_SECS));
        (now + wait).min(limit)
    }

    fn enter_init(&mut self) {
        self.state = State::Init;
        self.next = PollAt::Now;
        self.offer = None;
        self.retries = 0;
        self.probe = None;
        self.pending = None;
        self.decline = None;
    }

    fn lose_lease(&mut self) {
        if self.lease.take().is_some() {
            self.push_event(Event::Deconfigured);
        }
    }

    fn secs(&self, now: Instant) -> u16 {
        self.acquiring_since.map_or(0, |t| {
            u16::try_from(now.saturating_duration_since(t).as_secs()).unwrap_or(u16::MAX)
        })
    }

    fn request_base(&self, mt: MessageType, now: Instant) -> Repr<'_> {
        let mut r = Repr::new(mt, self.xid, self.mac);
        r.secs = self.secs(now);
        r.client_identifier = Some(OptionBytes::new(&self.client_id));
        r.max_size = Some(DHCP_MAX_MESSAGE_SIZE);
        r.parameter_request_list = Some(OptionBytes::new(&PARAMETER_REQUEST_LIST));
        r
    }

    /// Starts probing `addr` unless it is already being probed (or probing is off).
    fn probe(&mut self, addr: Ipv4Addr) {
        if self.detection == ConflictDetection::Off
            || self.probe.as_ref().is_some_and(|p| p.addr() == addr)
        {
            return;
        }
        debug!("{}: probing {addr} with ARP", self.ifname);
        self.probe = Some(Probe::new(self.mac, addr));
    }

    /// The ARP probe to send now, if any.
    pub fn dispatch_arp(&mut self, now: Instant) -> Option<arp::Repr> {
        self.probe.as_mut()?.dispatch(now)
    }

    /// Feeds one ARP packet seen on the link: a conflict with the address being probed
    /// declines it (or, for a remembered address no server has confirmed, forgets it).
    pub fn process_arp(&mut self, now: Instant, repr: &arp::Repr) {
        let Some(p) = self.probe.as_mut() else {
            return;
        };
        if !p.process(repr) {
            return;
        }
        let addr = p.addr();
        let mac = repr.sender_hw;
        warn!(
            "{}: {addr} is in use by {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, not using it",
            self.ifname, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
        );
        let _ = now;
        self.on_conflict(addr);
    }

    fn on_conflict(&mut self, addr: Ipv4Addr) {
        let server = match self.state {
            State::Probing => self.pending.as_ref().map(|l| l.server_id),
            State::Requesting => self.offer.map(|(s, _)| s),
            _ => None,
        };
        match (self.state, server) {
            (State::Probing | State::Requesting, Some(server)) => {
                // RFC 2131 §4.4.1: DECLINE, then start over. Sent at once even before the
                // ACK: the server is known from the offer, and a REQUEST for an address
                // known to be taken is pointless.
                self.state = State::Declined;
                self.decline = Some((server, addr));
                self.probe = None;
                self.pending = None;
                self.offer = None;
                self.reboot_addr = None;
                self.next = PollAt::Now;
            }
            (State::InitReboot, _) => {
                // No server has named itself yet, so there is no one to decline to.
                debug!("{}: forgetting {addr}", self.ifname);
                self.reboot_addr = None;
                self.enter_init();
            }
            _ => {}
        }
    }

    /// Advances timers and returns the message to send now, if any.
    pub fn dispatch(&mut self, now: Instant) -> Option<Outgoing<'_>> {
        if !self.due(now) {
            return None;
        }
        loop {
            match self.state {
                State::Released => return None,
                State::Init => {
                    self.xid = self.rng.next_u32();
                    self.acquiring_since = Some(now);
                    self.retries = 0;
                    self.state = State::Selecting;
                }
                State::Selecting => {
                    self.retries += 1;
                    self.discovers_unanswered = self.discovers_unanswered.saturating_add(1);
                    self.next = PollAt::At(self.backoff(now));
                    let r = self.request_base(MessageType::Discover, now);
                    return Some(raw_broadcast(r));
                }
                State::Requesting => {
                    let Some((server, addr)) = self.offer else {
                        self.enter_init();
                        continue;
                    };
                    if self.retries >= DHCP_REQUEST_RETRIES {
                        debug!("{}: no ACK from {server}, back to DISCOVER", self.ifname);
                        self.enter_init();
                        continue;
                    }
                    self.retries += 1;
                    self.next = PollAt::At(self.backoff(now));
                    let mut r = self.request_base(MessageType::Request, now);
                    r.requested_ip = Some(addr);
                    r.server_identifier = Some(server);
                    return Some(raw_broadcast(r));
                }
                State::InitReboot => {
                    let Some(addr) = self.reboot_addr else {
                        self.enter_init();
                        continue;
                    };
                    if self.retries >= DHCP_REBOOT_RETRIES {
                        debug!("{}: no answer for {addr}, back to DISCOVER", self.ifname);
                        self.reboot_addr = None;
                        self.enter_init();
                        continue;
                    }
                    if self.retries == 0 {
                        self.acquiring_since = Some(now);
                        // Probe in parallel with the REQUEST, so the ACK waits for little.
                        self.probe(addr);
                    }
                    self.retries += 1;
                    self.next = PollAt::At(self.backoff(now));
                    let mut r = self.request_base(MessageType::Request, now);
                    r.requested_ip = Some(addr);
                    return Some(raw_broadcast(r));
                }
                State::Probing => {
                    let outcome = self.probe.as_ref().map(|p| (p.outcome(now), p.poll_at()));
                    match outcome {
                        None | Some((Outcome::Free, _)) => {
                            self.bind_pending();
                            return None;
                        }
                        Some((Outcome::Probing, wake)) => {
                            // The probe's own deadline wakes the owner; check again then.
                            self.next = wake;
                            return None;
                        }
                        Some((Outcome::Conflict(_), _)) => {
                            let addr = self.pending.as_ref().map(|l| l.address);
                            if let Some(addr) = addr {
                                self.on_conflict(addr);
                            }
                            if self.state == State::Probing {
                                self.enter_init();
                            }
                        }
                    }
                }
                State::Declined => {
                    let Some((server, addr)) = self.decline.take() else {
                        self.enter_init();
                        continue;
                    };
                    info!(
                        "{}: declining {addr} to {server}; starting again in {DHCP_DECLINE_RESTART_SECS} s",
                        self.ifname
                    );
                    self.next = PollAt::At(now + Duration::from_secs(DHCP_DECLINE_RESTART_SECS));
                    let mut r = Repr::new(MessageType::Decline, self.xid, self.mac);
                    r.client_identifier = Some(OptionBytes::new(&self.client_id));
                    r.requested_ip = Some(addr);
                    r.server_identifier = Some(server);
                    return Some(raw_broadcast(r));
                }
                State::Bound => {
                    self.state = State::Renewing;
                    self.xid = self.rng.next_u32();
                    self.acquiring_since = Some(now);
                    self.retries = 0;
                }
                State::Renewing | State::Rebinding => {
                    let Some(lease) = self.lease.as_ref() else {
                        self.enter_init();
                        continue;
                    };
                    let (Some(t2), Some(expiry)) = (lease.rebind_at(), lease.expires_at()) else {
                        self.state = State::Bound;
                        self.next = PollAt::Idle;
                        return None;
                    };
                    let (addr, server) = (lease.address, lease.server_id);
                    if now >= expiry {
                        info!("{}: lease on {addr} expired", self.ifname);
                        self.lose_lease();
                        self.enter_init();
                        continue;
                    }
                    let rebinding = now >= t2;
                    if rebinding && self.state == State::Renewing {
                        self.state = State::Rebinding;
                    }
                    self.retries += 1;
                    let limit = if rebinding { expiry } else { t2 };
                    self.next = PollAt::At(Self::half_way(now, limit));
                    let mut r = self.request_base(MessageType::Request, now);
                    r.client_ip = addr;
                    return Some(if rebinding {
                        Outgoing {
                            repr: r,
                            src: addr,
                            dst: Destination::Broadcast,
                            transport: Transport::Raw,
                        }
                    } else {
                        Outgoing {
                            repr: r,
                            src: addr,
                            dst: Destination::Unicast(server),
                            transport: Transport::Udp,
                        }
                    });
                }
            }
        }
    }

    /// Gives the lease back: returns the RELEASE to send (if a lease was held), queues
    /// `Deconfigured`, and stops the client.
    pub fn release(&mut self, now: Instant) -> Option<Outgoing<'_>> {
        self.state = State::Released;
        self.next = PollAt::Idle;
        self.probe = None;
        self.pending = None;
        let lease = self.lease.take()?;
        self.push_event(Event::Deconfigured);
        self.xid = self.rng.next_u32();
        let mut r = self.request_base(MessageType::Release, now);
        r.secs = 0;
        r.max_size = None;
        r.parameter_request_list = None;
        r.client_ip = lease.address;
        r.server_identifier = Some(lease.server_id);
        Some(Outgoing {
            repr: r,
            src: lease.address,
            dst: Destination::Unicast(lease.server_id),
            transport: Transport::Udp,
        })
    }

    /// Feeds one parsed message from a server.
    pub fn process(&mut self, now: Instant, repr: &Repr<'_>) {
        let name = &self.ifname;
        let waiting = matches!(
            self.state,
            State::Selecting
                | State::Requesting
                | State::InitReboot
                | State::Renewing
                | State::Rebinding
        );
        if !waiting {
            debug!(
                "{name}: ignoring DHCP {:?} in {:?}",
                repr.message_type, self.state
            );
            return;
        }
        if repr.transaction_id != self.xid {
            debug!("{name}: ignoring DHCP {:?}: wrong xid", repr.message_type);
            return;
        }
        if repr.client_hardware_address != self.mac {
            debug!(
                "{name}: ignoring DHCP {:?}: wrong chaddr",
                repr.message_type
            );
            return;
        }
        let Some(server) = repr.server_identifier else {
            debug!(
                "{name}: ignoring DHCP {:?}: no server id",
                repr.message_type
            );
            return;
        };
        match (repr.message_type, self.state) {
            (MessageType::Offer, State::Selecting) => self.on_offer(server, repr),
            (MessageType::Ack, _) if self.state != State::Selecting => {
                self.on_ack(now, server, repr)
            }
            (MessageType::Nak, _) if self.state != State::Selecting => self.on_nak(now, server),
            (mt, st) => debug!("{name}: ignoring DHCP {mt:?} in {st:?}"),
        }
    }

    fn on_offer(&mut self, server: Ipv4Addr, repr: &Repr<'_>) {
        let addr = repr.your_ip;
        // The mask may come only with the ACK; when the offer has one, check it too.
        let checked = match repr.subnet_mask {
            Some(m) => prefix_of(Some(m)).and_then(|p| check_address(addr, Some(p), server)),
            None => check_address(addr, None, server),
        };
        if let Err(e) = checked {
            warn!("{}: DHCP OFFER from {server} rejected: {e}", self.ifname);
            return;
        }
        debug!("{}: OFFER {addr} from {server}", self.ifname);
        self.discovers_unanswered = 0;
        self.offer = Some((server, addr));
        self.state = State::Requesting;
        self.retries = 0;
        self.next = PollAt::Now;
        // Probe while the REQUEST/ACK round trip runs.
        self.probe(addr);
    }

    /// How long to wait before restarting after this NAK (None: at once).
    fn nak_wait(&self) -> Option<Duration> {
        let over = self.naks.checked_sub(DHCP_NAK_QUICK_RESTARTS + 1)?;
        let secs = (DHCP_RETRY_INITIAL_SECS << over.min(8)).min(DHCP_RETRY_MAX_SECS);
        Some(Duration::from_secs(secs))
    }

    fn on_nak(&mut self, now: Instant, server: Ipv4Addr) {
        if let (State::Requesting, Some((s, _))) = (self.state, self.offer) {
            if s != server {
                debug!(
                    "{}: ignoring NAK from {server}: not our server",
                    self.ifname
                );
                return;
            }
        }
        self.naks = self.naks.saturating_add(1);
        self.reboot_addr = None;
        self.lose_lease();
        self.enter_init();
        match self.nak_wait() {
            Some(wait) => {
                info!(
                    "{}: NAK {} in a row from {server}, waiting {} s before DISCOVER",
                    self.ifname,
                    self.naks,
                    wait.as_secs()
                );
                self.next = PollAt::At(now + wait);
            }
            None => debug!("{}: NAK from {server}, starting again", self.ifname),
        }
    }

    fn on_ack(&mut self, now: Instant, server: Ipv4Addr, repr: &Repr<'_>) {
        let name = self.ifname.clone();
        if let (State::Requesting, Some((s, _))) = (self.state, self.offer) {
            if s != server {
                debug!("{name}: ignoring ACK from {server}: not our server");
                return;
            }
        }
        let lease = match self.lease_from(now, server, repr) {
            Ok(l) => l,
            Err(e) => {
                warn!("{name}: DHCP ACK from {server} rejected: {e}");
                return;
            }
        };
        debug!("{name}: ACK {} from {server}", lease.address);
        match self.lease.as_ref() {
            Some(old) if old.address == lease.address => {
                let e = Event::Renewed(lease.clone());
                self.bind(lease, e);
                return;
            }
            // A new address in RENEWING/REBINDING: the old one goes now.
            Some(_) => self.lose_lease(),
            None => {}
        }
        if self.detection == ConflictDetection::Off {
            let e = Event::Configured(lease.clone());
            self.bind(lease, e);
            return;
        }
        // Report the address only once the probe found it free.
        self.probe(lease.address);
        self.pending = Some(lease);
        self.state = State::Probing;
        self.offer = None;
        self.next = PollAt::Now;
    }

    fn bind_pending(&mut self) {
        match self.pending.take() {
            Some(lease) => {
                debug!("{}: no other host on {}", self.ifname, lease.address);
                let e = Event::Configured(lease.clone());
                self.bind(lease, e);
            }
            None => self.enter_init(),
        }
    }

    fn bind(&mut self, lease: Lease, event: Event) {
        self.next = lease.renew_at().map_or(PollAt::Idle, PollAt::At);
        self.reboot_addr = Some(lease.address);
        self.lease = Some(lease);
        self.state = State::Bound;
        self.offer = None;
        self.probe = None;
        self.pending = None;
        self.retries = 0;
        self.discovers_unanswered = 0;
        self.naks = 0;
        self.push_event(event);
    }

    fn lease_from(
        &self,
        now: Instant,
        server: Ipv4Addr,
        repr: &Repr<'_>,
    ) -> Result<Lease, crate::dhcp::lease::LeaseError> {
        let name = self.ifname.as_str();
        let addr = repr.your_ip;
        let prefix_len = check_lease(addr, repr.subnet_mask, server)?;
        let mut lease_secs = match repr.lease_duration {
            Some(0) | None => return Err(crate::dhcp::lease::LeaseError::NoLeaseTime),
            Some(s) => s,
        };
        if lease_secs < DHCP_MIN_LEASE_SECS {
            info!("{name}: DHCP lease time {lease_secs} s raised to {DHCP_MIN_LEASE_SECS} s");
            lease_secs = DHCP_MIN_LEASE_SECS;
        }
        let mut router = None;
        for r in repr.routers.iter().flat_map(|l| l.iter()) {
            match check_router(r, addr, prefix_len) {
                Ok(()) => {
                    router = Some(r);
                    break;
                }
                Err(why) => warn!("{name}: DHCP router {r} not used: {why}"),
            }
        }
        if router.is_none() && repr.routers.is_some() {
            warn!("{name}: no usable router in the lease for {addr}/{prefix_len}");
        }
        let (renew_secs, rebind_secs) =
            timers(lease_secs, repr.renew_duration, repr.rebind_duration);
        Ok(Lease {
            address: addr,
            prefix_len,
            router,
            dns_servers: copy_servers(name, "DNS", repr.dns_servers),
            domain_name: copy_name(name, "domain name", repr.domain_name),
            hostname: copy_name(name, "host name", repr.hostname),
            ntp_servers: copy_servers(name, "NTP", repr.ntp_servers),
            mtu: repr.mtu,
            lease_secs,
            renew_secs,
            rebind_secs,
            server_id: server,
            acquired_at: now,
        })
    }
}

fn raw_broadcast(repr: Repr<'_>) -> Outgoing<'_> {
    Outgoing {
        repr,
        src: Ipv4Addr::UNSPECIFIED,
        dst: Destination::Broadcast,
        transport: Transport::Raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::{ACD_PROBE_INTERVAL_MS, ACD_PROBE_WINDOW_MS};
    use crate::dhcp::ifname;
    use crate::wire::dhcpv4::Packet;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 7];
    const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 8];
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);
    const DNS: [u8; 8] = [10, 0, 0, 1, 9, 9, 9, 9];
    const ROUTER: [u8; 4] = [10, 0, 0, 1];
    const OFF: ConflictDetection = ConflictDetection::Off;
    const ON: ConflictDetection = ConflictDetection::On;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn reply(mt: MessageType, xid: u32) -> Repr<'static> {
        let mut r = Repr::new(mt, xid, MAC);
        r.your_ip = ADDR;
        r.server_identifier = Some(SERVER);
        r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
        r.routers = Some(AddrList::new(opt::ROUTER, &ROUTER).unwrap());
        r.dns_servers = Some(AddrList::new(opt::DNS, &DNS).unwrap());
        r.domain_name = Some(OptionBytes::from(b"lan"));
        r.lease_duration = Some(1000);
        r
    }

    fn xid_of(c: &mut Client, now: Instant) -> u32 {
        c.dispatch(now).unwrap().repr.transaction_id
    }

    fn at(c: &Client) -> Instant {
        match c.poll_at() {
            PollAt::At(t) => t,
            p => panic!("unexpected {p:?}"),
        }
    }

    /// Runs DISCOVER/OFFER/REQUEST/ACK and returns the time of the ACK.
    fn bind(c: &mut Client, t0: Instant) -> Instant {
        let xid = xid_of(c, t0);
        c.process(t0, &reply(MessageType::Offer, xid));
        let o = c.dispatch(t0).unwrap();
        assert_eq!(o.repr.message_type, MessageType::Request);
        assert_eq!(o.repr.requested_ip, Some(ADDR));
        assert_eq!(o.repr.server_identifier, Some(SERVER));
        assert_eq!(o.transport, Transport::Raw);
        c.process(t0, &reply(MessageType::Ack, xid));
        t0
    }

    #[test]
    fn discover_then_backoff() {
        let mut c = Client::new(ifname("eth0"), MAC, 42, None, OFF);
        assert_eq!(c.poll_at(), PollAt::Now);
        let t0 = Instant::now();
        let o = c.dispatch(t0).unwrap();
        assert_eq!(o.repr.message_type, MessageType::Discover);
        assert_eq!(o.dst, Destination::Broadcast);
        assert_eq!(o.transport, Transport::Raw);
        assert_eq!(o.src, Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            o.repr.client_identifier,
            Some(OptionBytes::from(&[1, 2, 0, 0, 0, 0, 7]))
        );
        assert_eq!(c.state(), State::Selecting);
        let mut now = t0;
        for expect in [4u64, 8, 16, 32, 64, 64] {
            let next = at(&c);
            let d = next - now;
            assert!(d >= Duration::from_secs(expect - 1) && d <= Duration::from_secs(expect + 1));
            assert!(c.dispatch(next - Duration::from_millis(1)).is_none());
            now = next;
            assert_eq!(
                c.dispatch(now).unwrap().repr.message_type,
                MessageType::Discover
            );
        }
        assert_eq!(c.discovers_unanswered(), 7);
    }

    #[test]
    fn full_bind() {
        let mut c = Client::new(ifname("eth0"), MAC, 1, None, OFF);
        let t0 = bind(&mut c, Instant::now());
        assert_eq!(c.state(), State::Bound);
        let Some(Event::Configured(l)) = c.poll_event() else {
            panic!("no Configured")
        };
        assert_eq!(l.address, ADDR);
        assert_eq!(l.prefix_len, 24);
        assert_eq!(l.router, Some(SERVER));
        assert_eq!(&l.dns_servers[..], &[SERVER, Ipv4Addr::new(9, 9, 9, 9)]);
        assert_eq!(l.domain_name.as_str(), "lan");
        assert_eq!((l.renew_secs, l.rebind_secs), (500, 875));
        assert_eq!(c.poll_at(), PollAt::At(t0 + Duration::from_secs(500)));
        assert_eq!(c.discovers_unanswered(), 0);
        assert!(c.poll_event().is_none());
    }

    #[test]
    fn ignores_invalid_replies() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 3, None, OFF);
        let xid = xid_of(&mut c, t0);
        let mut bad = reply(MessageType::Offer, xid.wrapping_add(1));
        c.process(t0, &bad);
        bad = reply(MessageType::Offer, xid);
        bad.client_hardware_address = [9; 6];
        c.process(t0, &bad);
        bad = reply(MessageType::Offer, xid);
        bad.server_identifier = None;
        c.process(t0, &bad);
        c.process(t0, &reply(MessageType::Ack, xid));
        assert_eq!(c.state(), State::Selecting);
        c.process(t0, &reply(MessageType::Offer, xid));
        assert_eq!(c.state(), State::Requesting);
        c.dispatch(t0);
        for f in [
            |r: &mut Repr<'static>| r.lease_duration = Some(0),
            |r: &mut Repr<'static>| r.lease_duration = None,
            |r: &mut Repr<'static>| r.subnet_mask = Some(Ipv4Addr::new(255, 0, 255, 0)),
            |r: &mut Repr<'static>| r.subnet_mask = None,
            |r: &mut Repr<'static>| r.server_identifier = Some(Ipv4Addr::new(10, 0, 0, 2)),
        ] {
            let mut r = reply(MessageType::Ack, xid);
            f(&mut r);
            c.process(t0, &r);
            assert_eq!(c.state(), State::Requesting);
        }
        assert!(c.poll_event().is_none());
    }

    #[test]
    fn zero_router_is_dropped() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 3, None, OFF);
        let xid = xid_of(&mut c, t0);
        c.process(t0, &reply(MessageType::Offer, xid));
        c.dispatch(t0);
        let mut r = reply(MessageType::Ack, xid);
        r.routers = Some(AddrList::new(opt::ROUTER, &[0; 4]).unwrap());
        r.hostname = Some(OptionBytes::from(b"bad name\n"));
        c.process(t0, &r);
        let Some(Event::Configured(l)) = c.poll_event() else {
            panic!()
        };
        assert_eq!(l.router, None);
        assert!(l.hostname.is_empty());
    }

    #[test]
    fn renew_rebind_expire() {
        let mut c = Client::new(ifname("eth0"), MAC, 5, None, OFF);
        let t0 = bind(&mut c, Instant::now());
        c.poll_event();
        let t1 = t0 + Duration::from_secs(500);
        let o = c.dispatch(t1).unwrap();
        assert_eq!(o.repr.message_type, MessageType::Request);
        assert_eq!(o.dst, Destination::Unicast(SERVER));
        assert_eq!(o.transport, Transport::Udp);
        assert_eq!(o.src, ADDR);
        assert_eq!(o.repr.client_ip, ADDR);
        assert_eq!(o.repr.requested_ip, None);
        assert_eq!(o.repr.server_identifier, None);
        assert_eq!(c.state(), State::Renewing);
        // Half of the 375 s left until T2.
        assert_eq!(at(&c), t1 + Duration::from_millis(187_500));
        let t2 = t0 + Duration::from_secs(875);
        let mut now = at(&c);
        while now < t2 {
            c.dispatch(now);
            now = at(&c);
        }
        let o = c.dispatch(t2).unwrap();
        assert_eq!(o.dst, Destination::Broadcast);
        assert_eq!(o.transport, Transport::Raw);
        assert_eq!(o.src, ADDR);
        assert_eq!(c.state(), State::Rebinding);
        let expiry = t0 + Duration::from_secs(1000);
        // Half of the 125 s left, then the 60 s floor, then clipped to the expiry.
        assert_eq!(at(&c), t2 + Duration::from_millis(62_500));
        c.dispatch(at(&c));
        assert_eq!(at(&c), t2 + Duration::from_millis(122_500));
        c.dispatch(at(&c));
        assert_eq!(at(&c), expiry);
        let o = c.dispatch(expiry).unwrap();
        assert_eq!(o.repr.message_type, MessageType::Discover);
        assert_eq!(c.poll_event(), Some(Event::Deconfigured));
        assert_eq!(c.state(), State::Selecting);
    }

    #[test]
    fn renewed_and_readdressed() {
        let mut c = Client::new(ifname("eth0"), MAC, 6, None, OFF);
        let t0 = bind(&mut c, Instant::now());
        c.poll_event();
        let t1 = t0 + Duration::from_secs(500);
        let xid = xid_of(&mut c, t1);
        let mut r = reply(MessageType::Ack, xid);
        r.lease_duration = Some(2000);
        r.renew_duration = Some(100);
        r.rebind_duration = Some(150);
        c.process(t1, &r);
        let Some(Event::Renewed(l)) = c.poll_event() else {
            panic!()
        };
        assert_eq!(
            (l.lease_secs, l.renew_secs, l.rebind_secs),
            (2000, 100, 150)
        );
        assert_eq!(c.poll_at(), PollAt::At(t1 + Duration::from_secs(100)));
        let t = t1 + Duration::from_secs(100);
        let xid = xid_of(&mut c, t);
        let mut r = reply(MessageType::Ack, xid);
        r.your_ip = Ipv4Addr::new(10, 0, 0, 60);
        c.process(t, &r);
        assert_eq!(c.poll_event(), Some(Event::Deconfigured));
        assert!(
            matches!(c.poll_event(), Some(Event::Configured(l)) if l.address.octets()[3] == 60)
        );
    }

    #[test]
    fn nak_while_renewing() {
        let mut c = Client::new(ifname("eth0"), MAC, 7, None, OFF);
        let t0 = bind(&mut c, Instant::now());
        c.poll_event();
        let t1 = t0 + Duration::from_secs(500);
        let xid = xid_of(&mut c, t1);
        c.process(t1, &reply(MessageType::Nak, xid));
        assert_eq!(c.poll_event(), Some(Event::Deconfigured));
        assert_eq!(c.state(), State::Init);
        assert_eq!(c.poll_at(), PollAt::Now);
    }

    #[test]
    fn init_reboot() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 8, Some(ADDR), OFF);
        assert_eq!(c.state(), State::InitReboot);
        let o = c.dispatch(t0).unwrap();
        assert_eq!(o.repr.message_type, MessageType::Request);
        assert_eq!(o.repr.requested_ip, Some(ADDR));
        assert_eq!(o.repr.server_identifier, None);
        let xid = o.repr.transaction_id;
        c.process(t0, &reply(MessageType::Ack, xid));
        assert!(matches!(c.poll_event(), Some(Event::Configured(_))));

        let mut c = Client::new(ifname("eth0"), MAC, 8, Some(ADDR), OFF);
        c.dispatch(t0);
        let t = at(&c);
        assert_eq!(
            c.dispatch(t).unwrap().repr.message_type,
            MessageType::Request
        );
        let t = at(&c);
        assert_eq!(
            c.dispatch(t).unwrap().repr.message_type,
            MessageType::Discover
        );

        let mut c = Client::new(ifname("eth0"), MAC, 8, Some(ADDR), OFF);
        let xid = xid_of(&mut c, t0);
        c.process(t0, &reply(MessageType::Nak, xid));
        assert_eq!(c.state(), State::Init);
        assert!(c.poll_event().is_none());
    }

    #[test]
    fn requesting_gives_up() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 9, None, OFF);
        let xid = xid_of(&mut c, t0);
        c.process(t0, &reply(MessageType::Offer, xid));
        let mut now = t0;
        for _ in 0..DHCP_REQUEST_RETRIES {
            assert_eq!(
                c.dispatch(now).unwrap().repr.message_type,
                MessageType::Request
            );
            now = at(&c);
        }
        assert_eq!(
            c.dispatch(now).unwrap().repr.message_type,
            MessageType::Discover
        );
    }

    #[test]
    fn release_when_bound() {
        let mut c = Client::new(ifname("eth0"), MAC, 10, None, OFF);
        let t0 = bind(&mut c, Instant::now());
        c.poll_event();
        let o = c.release(t0).unwrap();
        assert_eq!(o.repr.message_type, MessageType::Release);
        assert_eq!(o.repr.client_ip, ADDR);
        assert_eq!(o.repr.server_identifier, Some(SERVER));
        assert_eq!(o.dst, Destination::Unicast(SERVER));
        assert_eq!(c.poll_event(), Some(Event::Deconfigured));
        assert_eq!(c.state(), State::Released);
        assert_eq!(c.poll_at(), PollAt::Idle);
        assert!(c.dispatch(t0 + Duration::from_secs(9999)).is_none());
        let mut c = Client::new(ifname("eth0"), MAC, 10, None, OFF);
        assert!(c.release(t0).is_none());
    }

    #[test]
    fn infinite_lease_never_renews() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 11, None, OFF);
        let xid = xid_of(&mut c, t0);
        c.process(t0, &reply(MessageType::Offer, xid));
        c.dispatch(t0);
        let mut r = reply(MessageType::Ack, xid);
        r.lease_duration = Some(u32::MAX);
        c.process(t0, &r);
        assert_eq!(c.poll_at(), PollAt::Idle);
    }

    /// Offers `your_ip`, with `f` applied, to a fresh client; true when it was taken.
    fn offer_taken(f: impl Fn(&mut Repr<'static>)) -> bool {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 12, None, OFF);
        let xid = xid_of(&mut c, t0);
        let mut r = reply(MessageType::Offer, xid);
        f(&mut r);
        c.process(t0, &r);
        c.state() == State::Requesting
    }

    /// ACKs, with `f` applied, a client in REQUESTING; the lease configured, if any.
    fn ack_lease(f: impl Fn(&mut Repr<'static>)) -> Option<Lease> {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 13, None, OFF);
        let xid = xid_of(&mut c, t0);
        c.process(t0, &reply(MessageType::Offer, xid));
        c.dispatch(t0).unwrap();
        let mut r = reply(MessageType::Ack, xid);
        f(&mut r);
        c.process(t0, &r);
        match c.poll_event() {
            Some(Event::Configured(l)) => Some(l),
            None => {
                assert_eq!(c.state(), State::Requesting);
                None
            }
            e => panic!("unexpected {e:?}"),
        }
    }

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    const BAD_ADDRESSES: [&str; 9] = [
        "127.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "0.1.2.3",
        "169.254.1.1",
        "224.0.0.1",
        "10.0.0.0",
        "10.0.0.255",
        "10.0.0.1",
    ];

    #[test]
    fn bad_addresses_are_never_taken() {
        for bad in BAD_ADDRESSES {
            assert!(!offer_taken(|r| r.your_ip = a(bad)), "offer of {bad}");
            assert!(ack_lease(|r| r.your_ip = a(bad)).is_none(), "ack of {bad}");
        }
        assert!(offer_taken(|_| {}));
        // A mask in the offer is checked too; without one only the address is.
        assert!(!offer_taken(|r| r.subnet_mask = Some(a("255.0.255.0"))));
        assert!(offer_taken(|r| r.subnet_mask = None));
    }

    #[test]
    fn bad_masks_are_never_taken() {
        for m in ["255.255.0.255", "0.0.0.0", "128.0.0.0", "254.0.0.0"] {
            assert!(
                ack_lease(|r| r.subnet_mask = Some(a(m))).is_none(),
                "mask {m}"
            );
        }
        assert!(ack_lease(|r| r.subnet_mask = None).is_none());
        let l = ack_lease(|r| r.subnet_mask = Some(a("255.0.0.0"))).unwrap();
        assert_eq!(l.prefix_len, 8);
    }

    #[test]
    fn first_usable_router_or_none() {
        let routers = |list: &'static [u8]| {
            move |r: &mut Repr<'static>| r.routers = Some(AddrList::new(opt::ROUTER, list).unwrap())
        };
        // Ours, 0.0.0.0, broadcast, multicast, loopback, class E, off-link, then a good one.
        const LIST: [u8; 32] = [
            10, 0, 0, 50, 0, 0, 0, 0, 255, 255, 255, 255, 224, 0, 0, 1, 127, 0, 0, 1, 240, 0, 0, 1,
            10, 0, 1, 1, 10, 0, 0, 2,
        ];
        let l = ack_lease(routers(&LIST)).unwrap();
        assert_eq!(l.router, Some(a("10.0.0.2")));
        for bad in LIST.chunks(4).take(7) {
            let bad: &'static [u8] = bad;
            let l = ack_lease(routers(bad)).unwrap();
            assert_eq!(l.router, None, "router {bad:?}");
            assert_eq!(l.address, ADDR, "the lease itself is kept");
        }
        // A /32 lease takes a router outside it (reached by an on-link host route).
        let l = ack_lease(|r| {
            r.subnet_mask = Some(Ipv4Addr::BROADCAST);
            r.routers = Some(AddrList::new(opt::ROUTER, &[192, 0, 2, 1]).unwrap());
        })
        .unwrap();
        assert_eq!((l.prefix_len, l.router), (32, Some(a("192.0.2.1"))));
    }

    #[test]
    fn junk_servers_and_names_are_dropped() {
        const JUNK: [u8; 24] = [
            0, 0, 0, 0, 127, 0, 0, 1, 224, 0, 0, 251, 255, 255, 255, 255, 240, 1, 2, 3, 10, 0, 0,
            53,
        ];
        let l = ack_lease(|r| {
            r.dns_servers = Some(AddrList::new(opt::DNS, &JUNK).unwrap());
            r.ntp_servers = Some(AddrList::new(opt::NTP, &JUNK).unwrap());
            r.domain_name = Some(OptionBytes::from(b"evil.example\nnameserver 6.6.6.6"));
            r.hostname = Some(OptionBytes::from(b"-box"));
        })
        .unwrap();
        assert_eq!(&l.dns_servers[..], &[a("10.0.0.53")]);
        assert_eq!(&l.ntp_servers[..], &[a("10.0.0.53")]);
        assert!(l.domain_name.is_empty());
        assert!(l.hostname.is_empty());
        let l = ack_lease(|r| r.hostname = Some(OptionBytes::from(b"box.lan"))).unwrap();
        assert_eq!(l.hostname.as_str(), "box.lan");
    }

    #[test]
    fn domain_split_over_instances_is_whole() {
        // Two option-15 instances on the wire, as a server sends a name cut by RFC 3396.
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 14, None, OFF);
        let xid = xid_of(&mut c, t0);
        c.process(t0, &reply(MessageType::Offer, xid));
        c.dispatch(t0).unwrap();
        let mut r = reply(MessageType::Ack, xid);
        r.domain_name = None;
        let mut buf = vec![0u8; r.buffer_len() + 32];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        let mut end = 240;
        while buf[end] != opt::END {
            end += 2 + usize::from(buf[end + 1]);
        }
        buf.splice(end..end, *b"\x0f\x04lab.\x0f\x07example");
        let r = Repr::parse(&Packet::new_unchecked(&buf[..])).unwrap();
        c.process(t0, &r);
        let Some(Event::Configured(l)) = c.poll_event() else {
            panic!("no lease")
        };
        assert_eq!(l.domain_name.as_str(), "lab.example");
    }

    #[test]
    fn lease_times_are_floored_and_ordered() {
        assert_eq!(timers(1000, None, None), (500, 875));
        assert_eq!(timers(60, None, None), (30, 52));
        assert_eq!(timers(3600, Some(5), Some(10)), (1800, 3150));
        assert_eq!(timers(3600, Some(2000), Some(1000)), (999, 1000));
        assert_eq!(timers(3600, Some(100), Some(4000)), (100, 3150));
        assert_eq!(timers(3600, Some(31), Some(31)), (30, 31));
        for lease in [60, 61, 100, 1000, 86400, u32::MAX - 1] {
            for t1 in [
                None,
                Some(0),
                Some(1),
                Some(30),
                Some(lease / 3),
                Some(lease),
            ] {
                for t2 in [None, Some(0), Some(31), Some(lease / 2), Some(lease - 1)] {
                    let (r, b) = timers(lease, t1, t2);
                    assert!(
                        DHCP_MIN_RENEW_SECS <= r && r < b && b < lease,
                        "{lease} {t1:?} {t2:?} -> {r} {b}"
                    );
                }
            }
        }
        let l = ack_lease(|r| r.lease_duration = Some(1)).unwrap();
        assert_eq!((l.lease_secs, l.renew_secs, l.rebind_secs), (60, 30, 52));
    }

    /// Runs a client against a scripted server for `secs` simulated seconds, the way the
    /// driver would; returns the messages the client sent. Stops at `limit` messages so a
    /// spinning client fails the test instead of hanging it.
    fn against_server(
        c: &mut Client,
        secs: u64,
        limit: usize,
        answer: impl Fn(&Repr<'_>) -> Option<Repr<'static>>,
    ) -> std::vec::Vec<(Duration, MessageType)> {
        let t0 = Instant::now();
        let mut now = t0;
        let mut sent = std::vec::Vec::new();
        while now < t0 + Duration::from_secs(secs) && sent.len() < limit {
            match c.poll_at() {
                PollAt::Now => {}
                PollAt::At(t) => now = now.max(t),
                PollAt::Idle => break,
            }
            let reply = c.dispatch(now).map(|o| {
                sent.push((now - t0, o.repr.message_type));
                answer(&o.repr)
            });
            c.dispatch_arp(now);
            if let Some(Some(r)) = reply {
                c.process(now, &r);
            }
            while c.poll_event().is_some() {}
        }
        sent
    }

    #[test]
    fn one_second_leases_do_not_spin() {
        let mut c = Client::new(ifname("eth0"), MAC, 15, None, OFF);
        let sent = against_server(&mut c, 600, 10_000, |q| {
            let mt = match q.message_type {
                MessageType::Discover => MessageType::Offer,
                MessageType::Request => MessageType::Ack,
                _ => return None,
            };
            let mut r = reply(mt, q.transaction_id);
            r.lease_duration = Some(1);
            r.renew_duration = Some(1);
            r.rebind_duration = Some(1);
            Some(r)
        });
        // One renewal per 30 s (T1 of the floored 60 s lease), plus the first exchange.
        assert!(
            sent.len() <= 2 + 600 / 30,
            "{} messages: {sent:?}",
            sent.len()
        );
        let renewals: std::vec::Vec<_> = sent.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(
            renewals[1..].iter().all(|d| *d >= Duration::from_secs(30)),
            "{renewals:?}"
        );
    }

    #[test]
    fn nak_storm_backs_off() {
        let mut c = Client::new(ifname("eth0"), MAC, 16, None, OFF);
        let sent = against_server(&mut c, 600, 10_000, |q| {
            let mt = match q.message_type {
                MessageType::Discover => MessageType::Offer,
                MessageType::Request => MessageType::Nak,
                _ => return None,
            };
            Some(reply(mt, q.transaction_id))
        });
        let discovers: std::vec::Vec<Duration> = sent
            .iter()
            .filter(|(_, m)| *m == MessageType::Discover)
            .map(|(t, _)| *t)
            .collect();
        // The first NAK restarts at once, then 4, 8, 16, 32, 64, 64 ... s.
        assert_eq!(discovers[1], discovers[0], "{discovers:?}");
        assert!(discovers.len() <= 2 + 5 + 600 / 64, "{discovers:?}");
        let gaps: std::vec::Vec<Duration> = discovers.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[1] >= Duration::from_secs(4), "{gaps:?}");
        assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "{gaps:?}");
        // The second NAK in a row waits; a lease in between resets the count.
        let mut c = Client::new(ifname("eth0"), MAC, 17, None, OFF);
        let t0 = Instant::now();
        let nak = |c: &mut Client, t| {
            let xid = xid_of(c, t);
            c.process(t, &reply(MessageType::Offer, xid));
            c.dispatch(t).unwrap();
            c.process(t, &reply(MessageType::Nak, xid));
        };
        nak(&mut c, t0);
        assert_eq!(c.poll_at(), PollAt::Now);
        nak(&mut c, t0);
        let t1 = at(&c);
        assert!(t1 >= t0 + Duration::from_secs(DHCP_RETRY_INITIAL_SECS));
        bind(&mut c, t1);
        assert!(matches!(c.poll_event(), Some(Event::Configured(_))));
        let t2 = t1 + Duration::from_secs(500);
        let xid = xid_of(&mut c, t2);
        c.process(t2, &reply(MessageType::Nak, xid));
        assert_eq!(c.poll_at(), PollAt::Now);
    }

    /// OFFER and its REQUEST at `t0` with probing on; returns the xid.
    fn offered(c: &mut Client, t0: Instant) -> u32 {
        let xid = xid_of(c, t0);
        c.process(t0, &reply(MessageType::Offer, xid));
        assert_eq!(
            c.dispatch(t0).unwrap().repr.message_type,
            MessageType::Request
        );
        xid
    }

    fn arp_reply(from: [u8; 6], ip: Ipv4Addr) -> arp::Repr {
        arp::Repr {
            operation: arp::Operation::Reply,
            sender_hw: from,
            sender_ip: ip,
            target_hw: MAC,
            target_ip: Ipv4Addr::UNSPECIFIED,
        }
    }

    #[test]
    fn probe_runs_beside_the_request_and_gates_the_ack() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 18, None, ON);
        let xid = offered(&mut c, t0);
        assert!(c.probing());
        assert_eq!(c.dispatch_arp(t0), Some(arp::Repr::probe(MAC, ADDR)));
        let t_ack = t0 + ms(2);
        c.process(t_ack, &reply(MessageType::Ack, xid));
        assert_eq!(c.state(), State::Probing);
        assert!(c.dispatch(t_ack).is_none());
        assert!(c.poll_event().is_none(), "nothing before the window ends");
        let t = at(&c);
        assert_eq!(t, t0 + ms(ACD_PROBE_INTERVAL_MS));
        assert_eq!(c.dispatch_arp(t), Some(arp::Repr::probe(MAC, ADDR)));
        assert!(c.dispatch(t).is_none());
        let end = at(&c);
        assert_eq!(end, t0 + ms(ACD_PROBE_WINDOW_MS));
        // Someone else's traffic does not matter.
        c.process_arp(end, &arp_reply(OTHER, a("10.0.0.51")));
        assert!(c.dispatch(end - ms(1)).is_none());
        assert!(c.dispatch_arp(end - ms(1)).is_none());
        assert!(c.dispatch(end).is_none());
        assert!(matches!(c.poll_event(), Some(Event::Configured(l)) if l.address == ADDR));
        assert_eq!(c.state(), State::Bound);
        assert!(!c.probing());
        assert_eq!(c.lease().unwrap().acquired_at, t_ack);
    }

    #[test]
    fn late_ack_after_a_quiet_window_binds_at_once() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 19, None, ON);
        let xid = offered(&mut c, t0);
        c.dispatch_arp(t0).unwrap();
        c.dispatch_arp(t0 + ms(ACD_PROBE_INTERVAL_MS)).unwrap();
        let t = t0 + Duration::from_secs(3);
        c.process(t, &reply(MessageType::Ack, xid));
        assert!(c.dispatch(t).is_none());
        assert!(matches!(c.poll_event(), Some(Event::Configured(_))));
    }

    fn assert_declined(c: &mut Client, t: Instant) {
        assert_eq!(c.state(), State::Declined);
        let o = c.dispatch(t).unwrap();
        assert_eq!(o.repr.message_type, MessageType::Decline);
        assert_eq!(o.repr.requested_ip, Some(ADDR));
        assert_eq!(o.repr.server_identifier, Some(SERVER));
        assert_eq!(o.repr.client_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(o.repr.parameter_request_list, None);
        assert_eq!(
            (o.dst, o.transport),
            (Destination::Broadcast, Transport::Raw)
        );
        // RFC 2131 §3.1: at least 10 s before starting again.
        let again = at(c);
        assert_eq!(again, t + Duration::from_secs(DHCP_DECLINE_RESTART_SECS));
        assert!(c.dispatch(again - ms(1)).is_none());
        assert!(c.dispatch_arp(again - ms(1)).is_none());
        assert_eq!(
            c.dispatch(again).unwrap().repr.message_type,
            MessageType::Discover
        );
        assert!(
            c.poll_event().is_none(),
            "the taken address is never reported"
        );
    }

    #[test]
    fn conflict_before_the_ack_declines() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 20, None, ON);
        let xid = offered(&mut c, t0);
        c.dispatch_arp(t0).unwrap();
        let t = t0 + ms(1);
        c.process_arp(t, &arp_reply(OTHER, ADDR));
        // The ACK still arriving changes nothing.
        c.process(t, &reply(MessageType::Ack, xid));
        assert_declined(&mut c, t);
    }

    #[test]
    fn conflict_after_the_ack_declines() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 21, None, ON);
        let xid = offered(&mut c, t0);
        c.dispatch_arp(t0).unwrap();
        c.process(t0 + ms(1), &reply(MessageType::Ack, xid));
        assert!(c.dispatch(t0 + ms(1)).is_none());
        let t = t0 + ms(30);
        // Another host probing for the same address is a conflict too (RFC 5227 §2.1.1).
        c.process_arp(t, &arp::Repr::probe(OTHER, ADDR));
        assert_declined(&mut c, t);
    }

    /// Drives dispatch/dispatch_arp as the driver does until `until`; the events seen.
    fn run_until(c: &mut Client, mut now: Instant, until: Instant) -> std::vec::Vec<Event> {
        let mut events = std::vec::Vec::new();
        loop {
            match c.poll_at() {
                PollAt::At(t) if t > until => break,
                PollAt::At(t) => now = now.max(t),
                PollAt::Now => {}
                PollAt::Idle => break,
            }
            c.dispatch(now);
            c.dispatch_arp(now);
            events.extend(std::iter::from_fn(|| c.poll_event()));
            if !events.is_empty() {
                break;
            }
        }
        events
    }

    #[test]
    fn remembered_address_is_probed_with_the_first_request() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 22, Some(ADDR), ON);
        let xid = xid_of(&mut c, t0);
        assert_eq!(c.dispatch_arp(t0), Some(arp::Repr::probe(MAC, ADDR)));
        c.process(t0 + ms(1), &reply(MessageType::Ack, xid));
        let early = run_until(&mut c, t0 + ms(1), t0 + ms(ACD_PROBE_WINDOW_MS - 1));
        assert!(early.is_empty(), "{early:?}");
        let e = run_until(&mut c, t0 + ms(1), t0 + ms(ACD_PROBE_WINDOW_MS));
        assert!(matches!(e[..], [Event::Configured(_)]), "{e:?}");
        // A conflict before any server answered: forget the address, DISCOVER at once.
        let mut c = Client::new(ifname("eth0"), MAC, 22, Some(ADDR), ON);
        xid_of(&mut c, t0);
        c.dispatch_arp(t0);
        c.process_arp(t0, &arp::Repr::announce(OTHER, ADDR));
        assert_eq!(
            c.dispatch(t0).unwrap().repr.message_type,
            MessageType::Discover
        );
    }

    #[test]
    fn ack_for_another_address_is_probed_itself() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 23, None, ON);
        let xid = offered(&mut c, t0);
        c.dispatch_arp(t0);
        let t = t0 + ms(5);
        let mut r = reply(MessageType::Ack, xid);
        r.your_ip = a("10.0.0.60");
        c.process(t, &r);
        c.dispatch(t);
        assert_eq!(
            c.dispatch_arp(t),
            Some(arp::Repr::probe(MAC, a("10.0.0.60")))
        );
        assert!(run_until(&mut c, t, t + ms(ACD_PROBE_WINDOW_MS - 1)).is_empty());
        let e = run_until(&mut c, t, t + ms(ACD_PROBE_WINDOW_MS));
        assert!(matches!(e[..], [Event::Configured(ref l)] if l.address.octets()[3] == 60));
    }

    #[test]
    fn no_probe_when_detection_is_off() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 24, None, OFF);
        let xid = offered(&mut c, t0);
        assert!(!c.probing());
        assert!(c.dispatch_arp(t0).is_none());
        c.process(t0, &reply(MessageType::Ack, xid));
        assert!(matches!(c.poll_event(), Some(Event::Configured(_))));
    }

    proptest::proptest! {
        /// Whatever a server puts in an ACK, a lease the client reports has only checked
        /// values and sane timers.
        #[test]
        fn accepted_leases_hold_only_checked_values(
            yiaddr in proptest::prelude::any::<u32>(),
            prefix in 0u8..=32,
            routers in proptest::collection::vec(proptest::prelude::any::<[u8; 4]>(), 1..4),
            dns in proptest::collection::vec(proptest::prelude::any::<[u8; 4]>(), 1..6),
            lease in proptest::prelude::any::<u32>(),
            t1 in proptest::option::of(proptest::prelude::any::<u32>()),
            t2 in proptest::option::of(proptest::prelude::any::<u32>()),
        ) {
            let routers = routers.concat();
            let dns = dns.concat();
            let mask = Ipv4Addr::from(crate::core::types::prefix_to_mask(prefix));
            let t0 = Instant::now();
            let mut c = Client::new(ifname("eth0"), MAC, 25, None, OFF);
            let xid = xid_of(&mut c, t0);
            c.process(t0, &reply(MessageType::Offer, xid));
            c.dispatch(t0).unwrap();
            let mut r = reply(MessageType::Ack, xid);
            r.your_ip = Ipv4Addr::from(yiaddr);
            r.subnet_mask = Some(mask);
            r.routers = Some(AddrList::new(opt::ROUTER, &routers).unwrap());
            r.dns_servers = Some(AddrList::new(opt::DNS, &dns).unwrap());
            r.lease_duration = Some(lease);
            r.renew_duration = t1;
            r.rebind_duration = t2;
            c.process(t0, &r);
            if let Some(Event::Configured(l)) = c.poll_event() {
                proptest::prop_assert!(check_lease(l.address, Some(mask), SERVER).is_ok());
                proptest::prop_assert_eq!(l.prefix_len, prefix);
                if let Some(gw) = l.router {
                    proptest::prop_assert!(check_router(gw, l.address, prefix).is_ok());
                }
                proptest::prop_assert!(l.dns_servers.iter().all(|a| check_server(*a).is_ok()));
                proptest::prop_assert!(l.lease_secs >= DHCP_MIN_LEASE_SECS);
                if l.lease_secs != INFINITE_LEASE {
                    proptest::prop_assert!(DHCP_MIN_RENEW_SECS <= l.renew_secs);
                    proptest::prop_assert!(l.renew_secs < l.rebind_secs);
                    proptest::prop_assert!(l.rebind_secs < l.lease_secs);
                }
            } else {
                proptest::prop_assert_eq!(c.state(), State::Requesting);
            }
        }
    }
}
