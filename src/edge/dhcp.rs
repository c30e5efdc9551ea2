//! The sockets of one interface's DHCP client and IPv4LL: the packet socket
//! while no address is usable (or REBINDING), the UDP socket on the leased
//! address for renewals, the ARP socket while link-local or the address probe
//! runs. Which ones are open follows the machine's state; no protocol logic
//! here (that is [`crate::dhcp::acquire::Acquire`]).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use smol::future::FutureExt;

use crate::caps::DHCP_RX_BUFFER;
use crate::dhcp::acquire::{Acquire, DhcpEventKind, DhcpInput, DhcpOutput};
use crate::dhcp::client::{IfName, State, Transport as Via};
use crate::edge::packet::{ArpSocket, RawSocket, UdpSock};
use crate::task::Transport;
use crate::wire::dhcpv4::{CLIENT_PORT, SERVER_PORT};
use crate::wire::{arp, ipv4udp};

/// Wait before retrying a socket that failed to open (interface missing, no permission).
const SOCKET_RETRY: Duration = Duration::from_secs(5);

/// The DHCP sockets of one interface.
pub struct DhcpSockets {
    ifindex: u32,
    ifname: IfName,
    raw: Option<RawSocket>,
    udp: Option<UdpSock>,
    arp: Option<ArpSocket>,
    /// Whether the raw / ARP socket is in use (else parked: see [`RawSocket::set_active`]).
    raw_on: bool,
    arp_on: bool,
    retry_at: Option<Instant>,
    raw_buf: Box<[u8; DHCP_RX_BUFFER]>,
    udp_buf: Box<[u8; DHCP_RX_BUFFER]>,
    arp_buf: [u8; 64],
}

/// Packet sockets are closed on the worker: each close waits for an RCU
/// grace period (10–30 ms), which would hold the loop as a client stops.
impl Drop for DhcpSockets {
    fn drop(&mut self) {
        let packet = (self.raw.take(), self.arp.take());
        if packet.0.is_some() || packet.1.is_some() {
            crate::edge::worker::drop_later(packet);
        }
    }
}

impl DhcpSockets {
    /// Sockets for `ifindex`/`ifname`, opened as the machine needs them.
    pub fn new(ifindex: u32, ifname: IfName) -> DhcpSockets {
        DhcpSockets {
            ifindex,
            ifname,
            raw: None,
            udp: None,
            arp: None,
            raw_on: false,
            arp_on: false,
            retry_at: None,
            raw_buf: Box::new([0; DHCP_RX_BUFFER]),
            udp_buf: Box::new([0; DHCP_RX_BUFFER]),
            arp_buf: [0; 64],
        }
    }

    fn open_raw(&mut self) -> bool {
        match &self.raw {
            Some(s) if !self.raw_on => {
                if let Err(e) = s.set_active(true) {
                    warn!("{}: DHCP raw socket: {e}", self.ifname);
                    self.raw = None;
                    return false;
                }
            }
            Some(_) => {}
            None => match RawSocket::open(self.ifindex) {
                Ok(s) => self.raw = Some(s),
                Err(e) => {
                    warn!("{}: DHCP raw socket: {e}", self.ifname);
                    return false;
                }
            },
        }
        self.raw_on = true;
        true
    }

    /// Stops receiving on the raw socket without closing it.
    fn park_raw(&mut self) {
        if let (Some(s), true) = (&self.raw, self.raw_on) {
            if let Err(e) = s.set_active(false) {
                debug!("{}: parking the raw socket: {e}; closing it", self.ifname);
                self.raw = None;
            }
        }
        self.raw_on = false;
    }

    /// Stops receiving on the ARP socket without closing it.
    fn park_arp(&mut self) {
        if let (Some(s), true) = (&self.arp, self.arp_on) {
            if let Err(e) = s.set_active(false) {
                debug!("{}: parking the ARP socket: {e}; closing it", self.ifname);
                self.arp = None;
            }
        }
        self.arp_on = false;
    }

    fn open_arp(&mut self) -> bool {
        match &self.arp {
            Some(s) if !self.arp_on => {
                if let Err(e) = s.set_active(true) {
                    warn!("{}: ARP socket: {e}", self.ifname);
                    self.arp = None;
                    return false;
                }
            }
            Some(_) => {}
            None => match ArpSocket::open(self.ifindex) {
                Ok(s) => self.arp = Some(s),
                Err(e) => {
                    warn!("{}: ARP socket: {e}", self.ifname);
                    return false;
                }
            },
        }
        self.arp_on = true;
        true
    }

    /// Sends a DHCP payload: over UDP from the leased address when asked and
    /// possible, else hand-built IPv4+UDP on the packet socket.
    async fn send_dhcp(&mut self, via: Via, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) {
        if via == Via::Udp {
            if self.udp.as_ref().is_none_or(|u| u.addr() != src) {
                // The daemon adds the address when it gets Bound; open lazily on first use.
                self.udp = match UdpSock::open(&self.ifname, src) {
                    Ok(u) => Some(u),
                    Err(e) => {
                        debug!("{}: UDP on {src} unavailable ({e}), using raw", self.ifname);
                        None
                    }
                };
            }
            if let Some(u) = &self.udp {
                match u.send(payload, dst).await {
                    Ok(()) => {
                        debug!("{}: sent over UDP from {src} to {dst}", self.ifname);
                        return;
                    }
                    Err(e) => debug!("{}: UDP send to {dst}: {e}, using raw", self.ifname),
                }
            }
        }
        if !self.open_raw() {
            return;
        }
        let hdr = ipv4udp::Repr {
            src_addr: src,
            dst_addr: dst,
            src_port: CLIENT_PORT,
            dst_port: SERVER_PORT,
            payload_len: payload.len(),
        };
        let mut frame = [0u8; DHCP_RX_BUFFER + ipv4udp::HEADER_LEN];
        let Some(body) = frame.get_mut(ipv4udp::HEADER_LEN..ipv4udp::HEADER_LEN + payload.len())
        else {
            warn!(
                "{}: DHCP message of {} bytes too large",
                self.ifname,
                payload.len()
            );
            return;
        };
        body.copy_from_slice(payload);
        if let Err(e) = hdr.emit(&mut frame[..]) {
            warn!("{}: DHCP headers: {e}", self.ifname);
            return;
        }
        if let Some(raw) = &self.raw {
            if let Err(e) = raw.send(&frame[..hdr.buffer_len()]).await {
                warn!("{}: DHCP send: {e}", self.ifname);
            }
        }
    }
}

impl Transport<Acquire> for DhcpSockets {
    async fn recv(&mut self) -> DhcpInput {
        let DhcpSockets {
            ifname,
            raw,
            udp,
            arp,
            raw_buf,
            udp_buf,
            arp_buf,
            raw_on,
            arp_on,
            ..
        } = self;
        enum Got {
            Raw(Result<crate::edge::packet::RawRecv, crate::edge::packet::Error>),
            Udp(Result<crate::edge::packet::Datagram, crate::edge::packet::Error>),
            Arp(Result<crate::edge::packet::Datagram, crate::edge::packet::Error>),
        }
        let raw_f = async {
            match raw.as_ref().filter(|_| *raw_on) {
                Some(s) => Got::Raw(s.recv(&mut raw_buf[..]).await),
                None => std::future::pending().await,
            }
        };
        let udp_f = async {
            match udp {
                Some(s) => Got::Udp(s.recv(&mut udp_buf[..]).await),
                None => std::future::pending().await,
            }
        };
        let arp_f = async {
            match arp.as_ref().filter(|_| *arp_on) {
                Some(s) => Got::Arp(s.recv(&mut arp_buf[..]).await),
                None => std::future::pending().await,
            }
        };
        let got = raw_f.or(udp_f).or(arp_f).await;
        let now = Instant::now();
        match got {
            // Any big packet on the link can overflow the buffer: drop it, keep the socket.
            Got::Raw(Ok(r)) if r.datagram.truncated => {
                debug!("{ifname}: dropped oversized packet (raw)");
                DhcpInput::Nothing
            }
            Got::Udp(Ok(d)) | Got::Arp(Ok(d)) if d.truncated => {
                debug!("{ifname}: dropped oversized datagram");
                DhcpInput::Nothing
            }
            Got::Raw(Ok(r)) => DhcpInput::Raw {
                packet: heapless::Vec::from_slice(&raw_buf[..r.datagram.len.min(raw_buf.len())])
                    .unwrap_or_default(),
                csum_not_ready: r.csum_not_ready,
            },
            Got::Udp(Ok(d)) => DhcpInput::Udp(
                heapless::Vec::from_slice(&udp_buf[..d.len.min(udp_buf.len())]).unwrap_or_default(),
            ),
            Got::Arp(Ok(d)) => DhcpInput::Arp(
                heapless::Vec::from_slice(&arp_buf[..d.len.min(arp_buf.len())]).unwrap_or_default(),
            ),
            Got::Raw(Err(e)) => {
                warn!("{ifname}: DHCP raw socket: {e}");
                self.raw = None;
                self.retry_at = Some(now + SOCKET_RETRY);
                DhcpInput::Nothing
            }
            Got::Udp(Err(e)) => {
                warn!("{ifname}: DHCP UDP socket: {e}");
                self.udp = None;
                DhcpInput::Nothing
            }
            Got::Arp(Err(e)) => {
                warn!("{ifname}: ARP socket: {e}");
                self.arp = None;
                self.retry_at = Some(now + SOCKET_RETRY);
                DhcpInput::Nothing
            }
        }
    }

    async fn send(&mut self, machine: &Acquire, out: DhcpOutput) {
        match out {
            DhcpOutput::Dhcp {
                transport,
                src,
                dst,
                payload,
            } => self.send_dhcp(transport, src, dst, &payload).await,
            DhcpOutput::Arp(pkt) => {
                // Link-local or a probe may have just started: open before sending.
                if machine.arp_needed() && !self.open_arp() {
                    return;
                }
                let mut b = [0u8; arp::PACKET_LEN];
                if pkt
                    .emit(&mut arp::Packet::new_unchecked(&mut b[..]))
                    .is_ok()
                {
                    if let Some(s) = &self.arp {
                        if let Err(e) = s.send(&b).await {
                            warn!("{}: ARP send: {e}", self.ifname);
                        }
                    }
                }
            }
        }
    }

    /// Raw while no address is usable or in REBINDING (or as fallback when
    /// UDP is unavailable); ARP while IPv4LL or the address probe runs.
    fn prepare(&mut self, machine: &Acquire, now: Instant) -> Option<Instant> {
        if let Some(t) = self.retry_at.filter(|t| now < *t) {
            return Some(t);
        }
        self.retry_at = None;
        let needs_raw = match machine.state() {
            State::Bound | State::Released => false,
            State::Renewing => self.udp.is_none(),
            _ => true,
        };
        let mut ok = true;
        if !needs_raw {
            self.park_raw();
        } else {
            ok &= self.open_raw();
        }
        if !machine.arp_needed() {
            self.park_arp();
        } else {
            ok &= self.open_arp();
        }
        if machine.lease().is_none() {
            self.udp = None;
        }
        if !ok {
            self.retry_at = Some(now + SOCKET_RETRY);
        }
        self.retry_at
    }

    fn on_event(&mut self, machine: &Acquire, event: &DhcpEventKind) {
        match event {
            DhcpEventKind::Bound(lease) => {
                info!(
                    "{}: bound {}/{}",
                    self.ifname, lease.address, lease.prefix_len
                );
                if !machine.arp_needed() {
                    self.park_arp();
                }
            }
            DhcpEventKind::Lost => {
                info!("{}: lease lost", self.ifname);
                self.udp = None;
            }
            _ => {}
        }
    }
}
