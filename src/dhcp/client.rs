//! Sans-I/O DHCPv4 client (RFC 2131), shaped like smoltcp's `socket/dhcpv4.rs`.
//!
//! No socket and no clock inside: the caller feeds parsed messages with [`Client::process`],
//! asks [`Client::poll_at`] when to call [`Client::dispatch`] next, sends what `dispatch`
//! returns, and drains [`Client::poll_event`].

use crate::caps::{
    DHCP_MAX_MESSAGE_SIZE, DHCP_REBOOT_RETRIES, DHCP_RENEW_MIN_RETRY_SECS, DHCP_REQUEST_RETRIES,
    DHCP_RETRY_INITIAL_SECS, DHCP_RETRY_JITTER_MS, DHCP_RETRY_MAX_SECS, MAX_DNS_SERVERS,
    MAX_DOMAIN_LEN, MAX_HOSTNAME_LEN, MAX_NTP_SERVERS,
};
use crate::dhcp::Prng;
use crate::wire::dhcpv4::{opt, AddrList, MessageType, Repr};
use heapless::{Deque, String, Vec};
use log::debug;
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

/// A lease as accepted from a DHCPACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Leased address (yiaddr).
    pub address: Ipv4Addr,
    /// Prefix length from option 1 (contiguous masks only).
    pub prefix_len: u8,
    /// Default router (first of option 3), absent when not sent or 0.0.0.0.
    pub router: Option<Ipv4Addr>,
    /// DNS servers (option 6), at most [`MAX_DNS_SERVERS`].
    pub dns_servers: Vec<Ipv4Addr, MAX_DNS_SERVERS>,
    /// Domain name (option 15), empty when absent.
    pub domain_name: String<MAX_DOMAIN_LEN>,
    /// Host name (option 12), empty when absent.
    pub hostname: String<MAX_HOSTNAME_LEN>,
    /// NTP servers (option 42), at most [`MAX_NTP_SERVERS`].
    pub ntp_servers: Vec<Ipv4Addr, MAX_NTP_SERVERS>,
    /// Interface MTU (option 26).
    pub mtu: Option<u16>,
    /// Lease time in seconds; `u32::MAX` is infinite.
    pub lease_secs: u32,
    /// T1 in seconds after `acquired_at`.
    pub renew_secs: u32,
    /// T2 in seconds after `acquired_at`.
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

/// RFC 2131 client states, plus `Released` after [`Client::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// About to send the first DISCOVER.
    Init,
    /// DISCOVER sent, waiting for an OFFER.
    Selecting,
    /// REQUEST for an offer sent, waiting for ACK/NAK.
    Requesting,
    /// REQUEST for a remembered address sent.
    InitReboot,
    /// Lease held, waiting for T1.
    Bound,
    /// Unicasting REQUESTs to the leasing server.
    Renewing,
    /// Broadcasting REQUESTs to any server.
    Rebinding,
    /// Released; the client does nothing further.
    Released,
}

/// When the client next wants [`Client::dispatch`] called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollAt {
    /// As soon as possible.
    Now,
    /// At this instant.
    At(Instant),
    /// Only after new input (infinite lease, released).
    Idle,
}

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
    events: Deque<Event, 4>,
}

fn prefix_len(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    // Contiguous: all ones then all zeros; /0 is no usable subnet.
    if ones == 0 || m.checked_shl(ones).unwrap_or(0) != 0 {
        return None;
    }
    u8::try_from(ones).ok()
}

fn copy_addrs<const N: usize>(
    ifname: &str,
    what: &str,
    list: Option<AddrList<'_>>,
) -> Vec<Ipv4Addr, N> {
    let mut out = Vec::new();
    for a in list.iter().flat_map(|l| l.iter()) {
        if a.is_unspecified() || a.is_broadcast() {
            debug!("{ifname}: DHCP {what} server {a} skipped");
            continue;
        }
        if out.push(a).is_err() {
            debug!("{ifname}: DHCP {what} servers beyond {N} ignored");
            break;
        }
    }
    out
}

fn copy_name<const N: usize>(ifname: &str, what: &str, raw: Option<&[u8]>) -> String<N> {
    let mut out = String::new();
    let Some(raw) = raw else { return out };
    // Some servers send a trailing NUL terminator.
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    let ok = raw
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_');
    match core::str::from_utf8(raw) {
        Ok(s) if ok && out.push_str(s).is_ok() => {}
        _ => debug!("{ifname}: DHCP {what} option ignored (invalid or longer than {N})"),
    }
    out
}

impl Client {
    /// A client for interface `ifname` with hardware address `mac`; `seed` feeds the PRNG
    /// (xids, jitter); `remembered` starts in INIT-REBOOT with that address.
    pub fn new(ifname: IfName, mac: [u8; 6], seed: u32, remembered: Option<Ipv4Addr>) -> Self {
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

    /// When to call [`Client::dispatch`] next.
    pub fn poll_at(&self) -> PollAt {
        self.next
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
        r.client_identifier = Some(&self.client_id);
        r.max_size = Some(DHCP_MAX_MESSAGE_SIZE);
        r.parameter_request_list = Some(&PARAMETER_REQUEST_LIST);
        r
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
                    }
                    self.retries += 1;
                    self.next = PollAt::At(self.backoff(now));
                    let mut r = self.request_base(MessageType::Request, now);
                    r.requested_ip = Some(addr);
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
                        debug!("{}: lease on {addr} expired", self.ifname);
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
            (MessageType::Nak, _) if self.state != State::Selecting => self.on_nak(server),
            (mt, st) => debug!("{name}: ignoring DHCP {mt:?} in {st:?}"),
        }
    }

    fn on_offer(&mut self, server: Ipv4Addr, repr: &Repr<'_>) {
        let addr = repr.your_ip;
        if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
            debug!("{}: ignoring OFFER of {addr}", self.ifname);
            return;
        }
        debug!("{}: OFFER {addr} from {server}", self.ifname);
        self.discovers_unanswered = 0;
        self.offer = Some((server, addr));
        self.state = State::Requesting;
        self.retries = 0;
        self.next = PollAt::Now;
    }

    fn on_nak(&mut self, server: Ipv4Addr) {
        if let (State::Requesting, Some((s, _))) = (self.state, self.offer) {
            if s != server {
                debug!(
                    "{}: ignoring NAK from {server}: not our server",
                    self.ifname
                );
                return;
            }
        }
        debug!("{}: NAK from {server} in {:?}", self.ifname, self.state);
        self.reboot_addr = None;
        self.lose_lease();
        self.enter_init();
    }

    fn on_ack(&mut self, now: Instant, server: Ipv4Addr, repr: &Repr<'_>) {
        let name = self.ifname.clone();
        if let (State::Requesting, Some((s, _))) = (self.state, self.offer) {
            if s != server {
                debug!("{name}: ignoring ACK from {server}: not our server");
                return;
            }
        }
        let Some(lease) = self.lease_from(now, server, repr) else {
            return;
        };
        let event = match self.lease.as_ref() {
            Some(old) if old.address == lease.address => Event::Renewed(lease.clone()),
            Some(_) => {
                self.push_event(Event::Deconfigured);
                Event::Configured(lease.clone())
            }
            None => Event::Configured(lease.clone()),
        };
        debug!("{name}: ACK {} from {server}", lease.address);
        self.next = lease.renew_at().map_or(PollAt::Idle, PollAt::At);
        self.reboot_addr = Some(lease.address);
        self.lease = Some(lease);
        self.state = State::Bound;
        self.offer = None;
        self.retries = 0;
        self.discovers_unanswered = 0;
        self.push_event(event);
    }

    fn lease_from(&self, now: Instant, server: Ipv4Addr, repr: &Repr<'_>) -> Option<Lease> {
        let name = self.ifname.as_str();
        let addr = repr.your_ip;
        if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
            debug!("{name}: ignoring ACK: address {addr}");
            return None;
        }
        let lease_secs = match repr.lease_duration {
            Some(0) | None => {
                debug!("{name}: ignoring ACK: zero or missing lease time");
                return None;
            }
            Some(s) => s,
        };
        // No classful default: a lease without a usable mask is not configurable.
        let Some(prefix_len) = repr.subnet_mask.and_then(prefix_len) else {
            debug!("{name}: ignoring ACK: missing or non-contiguous subnet mask");
            return None;
        };
        // A 0.0.0.0 router is a server misconfiguration: keep the lease, drop the option.
        let router = match repr.router {
            Some(r) if r.is_unspecified() => {
                debug!("{name}: DHCP router 0.0.0.0 dropped");
                None
            }
            r => r,
        };
        let (renew_secs, rebind_secs) = if lease_secs == INFINITE_LEASE {
            (INFINITE_LEASE, INFINITE_LEASE)
        } else {
            let t2 = match repr.rebind_duration {
                Some(t) if t > 0 && t < lease_secs => t,
                _ => (u64::from(lease_secs) * 7 / 8) as u32,
            };
            let t1 = match repr.renew_duration {
                Some(t) if t > 0 && t < t2 => t,
                _ => (lease_secs / 2).min(t2),
            };
            (t1, t2)
        };
        Some(Lease {
            address: addr,
            prefix_len,
            router,
            dns_servers: copy_addrs(name, "DNS", repr.dns_servers),
            domain_name: copy_name(name, "domain name", repr.domain_name),
            hostname: copy_name(name, "host name", repr.hostname),
            ntp_servers: copy_addrs(name, "NTP", repr.ntp_servers),
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
    use crate::dhcp::ifname;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 7];
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);
    const DNS: [u8; 8] = [10, 0, 0, 1, 9, 9, 9, 9];

    fn reply(mt: MessageType, xid: u32) -> Repr<'static> {
        let mut r = Repr::new(mt, xid, MAC);
        r.your_ip = ADDR;
        r.server_identifier = Some(SERVER);
        r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
        r.router = Some(SERVER);
        r.dns_servers = Some(AddrList::new(opt::DNS, &DNS).unwrap());
        r.domain_name = Some(b"lan");
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
        let mut c = Client::new(ifname("eth0"), MAC, 42, None);
        assert_eq!(c.poll_at(), PollAt::Now);
        let t0 = Instant::now();
        let o = c.dispatch(t0).unwrap();
        assert_eq!(o.repr.message_type, MessageType::Discover);
        assert_eq!(o.dst, Destination::Broadcast);
        assert_eq!(o.transport, Transport::Raw);
        assert_eq!(o.src, Ipv4Addr::UNSPECIFIED);
        assert_eq!(o.repr.client_identifier, Some(&[1, 2, 0, 0, 0, 0, 7][..]));
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
        let mut c = Client::new(ifname("eth0"), MAC, 1, None);
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
        let mut c = Client::new(ifname("eth0"), MAC, 3, None);
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
        let mut c = Client::new(ifname("eth0"), MAC, 3, None);
        let xid = xid_of(&mut c, t0);
        c.process(t0, &reply(MessageType::Offer, xid));
        c.dispatch(t0);
        let mut r = reply(MessageType::Ack, xid);
        r.router = Some(Ipv4Addr::UNSPECIFIED);
        r.hostname = Some(b"bad name\n");
        c.process(t0, &r);
        let Some(Event::Configured(l)) = c.poll_event() else {
            panic!()
        };
        assert_eq!(l.router, None);
        assert!(l.hostname.is_empty());
    }

    #[test]
    fn renew_rebind_expire() {
        let mut c = Client::new(ifname("eth0"), MAC, 5, None);
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
        let mut c = Client::new(ifname("eth0"), MAC, 6, None);
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
        let mut c = Client::new(ifname("eth0"), MAC, 7, None);
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
        let mut c = Client::new(ifname("eth0"), MAC, 8, Some(ADDR));
        assert_eq!(c.state(), State::InitReboot);
        let o = c.dispatch(t0).unwrap();
        assert_eq!(o.repr.message_type, MessageType::Request);
        assert_eq!(o.repr.requested_ip, Some(ADDR));
        assert_eq!(o.repr.server_identifier, None);
        let xid = o.repr.transaction_id;
        c.process(t0, &reply(MessageType::Ack, xid));
        assert!(matches!(c.poll_event(), Some(Event::Configured(_))));

        let mut c = Client::new(ifname("eth0"), MAC, 8, Some(ADDR));
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

        let mut c = Client::new(ifname("eth0"), MAC, 8, Some(ADDR));
        let xid = xid_of(&mut c, t0);
        c.process(t0, &reply(MessageType::Nak, xid));
        assert_eq!(c.state(), State::Init);
        assert!(c.poll_event().is_none());
    }

    #[test]
    fn requesting_gives_up() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 9, None);
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
        let mut c = Client::new(ifname("eth0"), MAC, 10, None);
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
        let mut c = Client::new(ifname("eth0"), MAC, 10, None);
        assert!(c.release(t0).is_none());
    }

    #[test]
    fn infinite_lease_never_renews() {
        let t0 = Instant::now();
        let mut c = Client::new(ifname("eth0"), MAC, 11, None);
        let xid = xid_of(&mut c, t0);
        c.process(t0, &reply(MessageType::Offer, xid));
        c.dispatch(t0);
        let mut r = reply(MessageType::Ack, xid);
        r.lease_duration = Some(u32::MAX);
        c.process(t0, &r);
        assert_eq!(c.poll_at(), PollAt::Idle);
    }

    #[test]
    fn masks() {
        assert_eq!(prefix_len(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(prefix_len(Ipv4Addr::new(255, 255, 240, 0)), Some(20));
        assert_eq!(prefix_len(Ipv4Addr::new(255, 255, 0, 255)), None);
        assert_eq!(prefix_len(Ipv4Addr::new(0, 0, 0, 0)), None);
    }
}
