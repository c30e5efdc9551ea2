//! Sans-I/O address acquisition for one interface: the DHCP client with the IPv4 link-local
//! fallback beside it.
//!
//! It owns the two decisions between them: link-local starts after
//! [`IPV4LL_AFTER_DISCOVERS`] unanswered DISCOVERs, and a DHCP lease replaces a claimed
//! link-local address. Same shape as [`Client`]: `process_*` for input, `dispatch_*` for
//! output, [`Acquire::poll_at`] for the next deadline, [`Acquire::poll_event`] for events.

use crate::caps::IPV4LL_AFTER_DISCOVERS;
use crate::dhcp::acd::ConflictDetection;
use crate::dhcp::client::{self, Client, IfName, Lease, Outgoing, PollAt, State};
use crate::dhcp::ipv4ll::{self, Ipv4Ll};
use crate::wire::{arp, dhcpv4};
use log::info;
use std::net::Ipv4Addr;
use std::time::Instant;

/// What happened on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpEventKind {
    /// A new lease: add its address and routes.
    Bound(Lease),
    /// Same address, new times or options.
    Renewed(Lease),
    /// The lease is gone: remove its address.
    Lost,
    /// A link-local address was claimed: add it.
    LinkLocal(Ipv4Addr),
    /// The link-local address must be removed (conflict, or a DHCP lease supersedes it).
    LinkLocalLost,
}

/// The earlier of two deadlines.
pub fn earliest(a: PollAt, b: PollAt) -> PollAt {
    a.min(b)
}

/// DHCP plus IPv4LL for one interface.
#[derive(Debug)]
pub struct Acquire {
    ifname: IfName,
    mac: [u8; 6],
    client: Client,
    ll: Option<Ipv4Ll>,
    /// `Bound` held back until `LinkLocalLost` was taken, so the daemon removes first.
    held: Option<DhcpEventKind>,
}

impl Acquire {
    /// Starts with DHCP only; `seed`, `remembered` and `detection` go to [`Client::new`].
    pub fn new(
        ifname: IfName,
        mac: [u8; 6],
        seed: u32,
        remembered: Option<Ipv4Addr>,
        detection: ConflictDetection,
    ) -> Self {
        Acquire {
            client: Client::new(ifname.clone(), mac, seed, remembered, detection),
            ifname,
            mac,
            ll: None,
            held: None,
        }
    }

    /// The DHCP client's state.
    pub fn state(&self) -> State {
        self.client.state()
    }

    /// The DHCP lease held, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.client.lease()
    }

    /// Whether link-local runs.
    pub fn link_local_running(&self) -> bool {
        self.ll.is_some()
    }

    /// Whether something listens to or sends ARP (link-local, or the DHCP address probe),
    /// so the ARP socket must be open.
    pub fn arp_needed(&self) -> bool {
        self.ll.is_some() || self.client.probing()
    }

    fn link_local_due(&self) -> bool {
        self.ll.is_none()
            && self.client.lease().is_none()
            && self.client.discovers_unanswered() >= IPV4LL_AFTER_DISCOVERS
    }

    /// When to call the `dispatch_*` methods next.
    pub fn poll_at(&self) -> PollAt {
        if self.link_local_due() {
            return PollAt::Now;
        }
        earliest(
            self.client.poll_at(),
            self.ll.as_ref().map_or(PollAt::Idle, Ipv4Ll::poll_at),
        )
    }

    /// The DHCP message to send now, if any.
    pub fn dispatch_dhcp(&mut self, now: Instant) -> Option<Outgoing<'_>> {
        self.client.dispatch(now)
    }

    /// The ARP packet to send now, if any (the DHCP address probe first); starts
    /// link-local when DHCP got no answer. Call after [`Acquire::dispatch_dhcp`] so the
    /// DISCOVER count is current; call again while [`Acquire::poll_at`] is due, as one call
    /// returns one packet.
    pub fn dispatch_arp(&mut self, now: Instant) -> Option<arp::Repr> {
        if self.link_local_due() {
            info!("{}: no DHCP answer, starting IPv4 link-local", self.ifname);
            self.ll = Some(Ipv4Ll::new(self.ifname.clone(), self.mac));
        }
        if let Some(p) = self.client.dispatch_arp(now) {
            return Some(p);
        }
        self.ll.as_mut()?.dispatch(now)
    }

    /// RELEASE for the lease held, if any.
    pub fn release(&mut self, now: Instant) -> Option<Outgoing<'_>> {
        self.client.release(now)
    }

    /// Feeds one DHCP message addressed to us.
    pub fn process_dhcp(&mut self, now: Instant, repr: &dhcpv4::Repr<'_>) {
        self.client.process(now, repr);
    }

    /// Feeds one ARP packet seen on the link to the DHCP probe and link-local.
    pub fn process_arp(&mut self, now: Instant, repr: &arp::Repr) {
        self.client.process_arp(now, repr);
        if let Some(ll) = self.ll.as_mut() {
            ll.process(now, repr);
        }
    }

    /// Next event for the daemon, link-local ones first.
    pub fn poll_event(&mut self) -> Option<DhcpEventKind> {
        if let Some(e) = self.held.take() {
            return Some(e);
        }
        if let Some(e) = self.ll.as_mut().and_then(Ipv4Ll::poll_event) {
            return Some(match e {
                ipv4ll::Event::Claimed(a) => DhcpEventKind::LinkLocal(a),
                ipv4ll::Event::Lost => DhcpEventKind::LinkLocalLost,
            });
        }
        Some(match self.client.poll_event()? {
            client::Event::Configured(lease) => {
                // A DHCP lease supersedes link-local: stop it and drop its address first.
                let ll = self.ll.take();
                if ll.is_some_and(|ll| ll.claimed().is_some()) {
                    self.held = Some(DhcpEventKind::Bound(lease));
                    return Some(DhcpEventKind::LinkLocalLost);
                }
                DhcpEventKind::Bound(lease)
            }
            client::Event::Renewed(lease) => DhcpEventKind::Renewed(lease),
            client::Event::Deconfigured => DhcpEventKind::Lost,
        })
    }
}

/// What the DHCP transport hands the machine.
#[derive(Debug, Clone)]
pub enum DhcpInput {
    /// An IPv4 packet from the packet socket; `csum_not_ready`: the kernel
    /// left the UDP checksum unfinished (veth, virtio), so it is not verified.
    Raw {
        packet: heapless::Vec<u8, { crate::caps::DHCP_RX_BUFFER }>,
        csum_not_ready: bool,
    },
    /// A DHCP message from the UDP socket.
    Udp(heapless::Vec<u8, { crate::caps::DHCP_RX_BUFFER }>),
    /// An ARP packet.
    Arp(heapless::Vec<u8, 64>),
    /// Nothing for the machine (a socket error the transport handled, an
    /// oversized frame it dropped).
    Nothing,
}

/// What the machine asks the DHCP transport to send (one at a time, so
/// the size of the DHCP variant costs nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum DhcpOutput {
    /// An encoded DHCP message for the raw or the UDP socket.
    Dhcp {
        transport: client::Transport,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: heapless::Vec<u8, { crate::caps::DHCP_RX_BUFFER }>,
    },
    /// An ARP packet (probe, announcement, defence).
    Arp(arp::Repr),
}

/// Encodes an outgoing message into an owned payload.
fn encode(ifname: &IfName, out: &Outgoing<'_>) -> Option<DhcpOutput> {
    let mut payload = heapless::Vec::new();
    payload.resize(out.repr.buffer_len(), 0).ok()?;
    match out
        .repr
        .emit(&mut dhcpv4::Packet::new_unchecked(&mut payload[..]))
    {
        Ok(()) => Some(DhcpOutput::Dhcp {
            transport: out.transport,
            src: out.src,
            dst: out.dst_addr(),
            payload,
        }),
        Err(e) => {
            log::warn!(
                "{ifname}: cannot encode DHCP {:?}: {e}",
                out.repr.message_type
            );
            None
        }
    }
}

impl crate::task::Machine for Acquire {
    type Input = DhcpInput;
    type Output = DhcpOutput;
    type Event = DhcpEventKind;
    type Config = ();

    fn poll_at(&self) -> PollAt {
        Acquire::poll_at(self)
    }

    fn dispatch(&mut self, now: &crate::task::Now) -> Option<DhcpOutput> {
        let ifname = self.ifname.clone();
        if let Some(out) = self.dispatch_dhcp(now.mono) {
            if let Some(o) = encode(&ifname, &out) {
                return Some(o);
            }
        }
        self.dispatch_arp(now.mono).map(DhcpOutput::Arp)
    }

    fn process(&mut self, now: &crate::task::Now, input: DhcpInput) {
        use crate::wire::ipv4udp;
        let dhcp = |a: &mut Acquire, payload: &[u8]| match dhcpv4::Repr::parse(
            &dhcpv4::Packet::new_unchecked(payload),
        ) {
            Ok(r) => a.process_dhcp(now.mono, &r),
            Err(e) => log::debug!("{}: dropped DHCP message: {e}", a.ifname),
        };
        match input {
            DhcpInput::Raw {
                packet,
                csum_not_ready,
            } => {
                let mode = if csum_not_ready {
                    ipv4udp::UdpChecksum::KernelUnfinished
                } else {
                    ipv4udp::UdpChecksum::Verify
                };
                match ipv4udp::Repr::parse(&ipv4udp::Ipv4Packet::new_unchecked(&packet[..]), mode) {
                    Ok((h, payload))
                        if h.src_port == dhcpv4::SERVER_PORT
                            && h.dst_port == dhcpv4::CLIENT_PORT =>
                    {
                        dhcp(self, payload)
                    }
                    Ok(_) => {}
                    Err(e) => log::debug!("{}: dropped packet: {e}", self.ifname),
                }
            }
            DhcpInput::Udp(payload) => dhcp(self, &payload),
            DhcpInput::Arp(packet) => {
                if !self.arp_needed() {
                    return;
                }
                match arp::Repr::parse(&arp::Packet::new_unchecked(&packet[..])) {
                    Ok(r) => self.process_arp(now.mono, &r),
                    Err(e) => log::debug!("{}: dropped ARP: {e}", self.ifname),
                }
            }
            DhcpInput::Nothing => {}
        }
    }

    fn poll_event(&mut self) -> Option<DhcpEventKind> {
        Acquire::poll_event(self)
    }

    fn reconfigure(&mut self, (): ()) {}

    fn stop(&mut self, now: &crate::task::Now, graceful: bool) -> Option<DhcpOutput> {
        if !graceful {
            return None;
        }
        let ifname = self.ifname.clone();
        let out = self.release(now.mono)?;
        log::info!("{ifname}: releasing {} to {}", out.src, out.dst_addr());
        encode(&ifname, &out)
    }
}

/// The interface name, for the transport's log lines.
impl Acquire {
    pub fn ifname(&self) -> &IfName {
        &self.ifname
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::ifname;
    use crate::wire::dhcpv4::MessageType;
    use std::time::Duration;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);

    fn new() -> Acquire {
        Acquire::new(ifname("eth0"), MAC, 7, None, ConflictDetection::Off)
    }

    fn reply(mt: MessageType, xid: u32) -> dhcpv4::Repr<'static> {
        let mut r = dhcpv4::Repr::new(mt, xid, MAC);
        r.your_ip = ADDR;
        r.server_identifier = Some(SERVER);
        r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
        r.lease_duration = Some(1000);
        r
    }

    /// Runs the machine like the driver does until `until` (or until link-local starts, if
    /// `stop_at_ll`); returns the time reached and the last message's xid.
    fn run(
        a: &mut Acquire,
        mut now: Instant,
        until: Instant,
        stop_at_ll: bool,
    ) -> (Instant, Option<u32>) {
        let mut xid = None;
        while let PollAt::Now | PollAt::At(_) = a.poll_at() {
            if stop_at_ll && a.link_local_running() {
                break;
            }
            if let PollAt::At(t) = a.poll_at() {
                if t > until {
                    break;
                }
                now = now.max(t);
            }
            if let Some(o) = a.dispatch_dhcp(now) {
                xid = Some(o.repr.transaction_id);
            }
            a.dispatch_arp(now);
        }
        (now, xid)
    }

    fn events(a: &mut Acquire) -> Vec<DhcpEventKind> {
        std::iter::from_fn(|| a.poll_event()).collect()
    }

    #[test]
    fn link_local_starts_after_unanswered_discovers() {
        let mut a = new();
        let t0 = Instant::now();
        // DISCOVERs go out at 0, ~4 and ~12 s; link-local waits for the third.
        let (now, _) = run(&mut a, t0, t0 + Duration::from_secs(9), false);
        assert!(!a.link_local_running());
        run(&mut a, now, t0 + Duration::from_secs(15), false);
        assert!(a.link_local_running());
        assert!(events(&mut a).is_empty());
    }

    #[test]
    fn answered_discover_keeps_link_local_off() {
        let mut a = new();
        let t0 = Instant::now();
        let (now, xid) = run(&mut a, t0, t0 + Duration::from_secs(1), false);
        a.process_dhcp(now, &reply(MessageType::Offer, xid.unwrap()));
        run(&mut a, now, now + Duration::from_secs(1), false);
        a.process_dhcp(now, &reply(MessageType::Ack, xid.unwrap()));
        run(&mut a, now, now + Duration::from_secs(60), false);
        assert!(!a.link_local_running());
        assert!(matches!(events(&mut a)[..], [DhcpEventKind::Bound(ref l)] if l.address == ADDR));
    }

    #[test]
    fn lease_replaces_claimed_link_local() {
        let mut a = new();
        let t0 = Instant::now();
        // Long enough for three DISCOVERs and the whole probe/announce sequence.
        let (now, xid) = run(&mut a, t0, t0 + Duration::from_secs(25), false);
        let ll = match events(&mut a)[..] {
            [DhcpEventKind::LinkLocal(ll)] => ll,
            ref e => panic!("unexpected {e:?}"),
        };
        assert_eq!(ll.octets()[..2], [169, 254]);
        let xid = xid.unwrap();
        a.process_dhcp(now, &reply(MessageType::Offer, xid));
        assert!(a.dispatch_dhcp(now).is_some());
        a.process_dhcp(now, &reply(MessageType::Ack, xid));
        let e = events(&mut a);
        assert!(
            matches!(e[..], [DhcpEventKind::LinkLocalLost, DhcpEventKind::Bound(ref l)] if l.address == ADDR),
            "{e:?}"
        );
        assert!(!a.link_local_running());
    }

    #[test]
    fn lease_during_probing_stops_link_local_silently() {
        let mut a = new();
        let t0 = Instant::now();
        let (now, xid) = run(&mut a, t0, t0 + Duration::from_secs(25), true);
        assert!(a.link_local_running());
        assert!(events(&mut a).is_empty());
        let xid = xid.unwrap();
        a.process_dhcp(now, &reply(MessageType::Offer, xid));
        assert!(a.dispatch_dhcp(now).is_some());
        a.process_dhcp(now, &reply(MessageType::Ack, xid));
        let e = events(&mut a);
        assert!(matches!(e[..], [DhcpEventKind::Bound(_)]), "{e:?}");
        assert!(!a.link_local_running());
    }

    #[test]
    fn address_probe_goes_through_the_arp_path() {
        let mut a = Acquire::new(ifname("eth0"), MAC, 7, None, ConflictDetection::On);
        let t0 = Instant::now();
        let xid = a.dispatch_dhcp(t0).unwrap().repr.transaction_id;
        assert!(!a.arp_needed());
        a.process_dhcp(t0, &reply(MessageType::Offer, xid));
        assert!(a.arp_needed(), "the probe needs the ARP socket");
        assert!(a.dispatch_dhcp(t0).is_some());
        assert_eq!(a.dispatch_arp(t0), Some(arp::Repr::probe(MAC, ADDR)));
        // A reply from the holder reaches the client through the same path.
        let holder = arp::Repr {
            operation: arp::Operation::Reply,
            sender_hw: [2, 0, 0, 0, 0, 0x42],
            sender_ip: ADDR,
            target_hw: MAC,
            target_ip: Ipv4Addr::UNSPECIFIED,
        };
        a.process_arp(t0, &holder);
        assert_eq!(a.state(), State::Declined);
        assert!(!a.arp_needed());
        let o = a.dispatch_dhcp(t0).unwrap();
        assert_eq!(o.repr.message_type, MessageType::Decline);
        assert!(events(&mut a).is_empty());
    }
}
