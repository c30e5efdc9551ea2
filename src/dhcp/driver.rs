//! The task that runs one interface's DHCP client (and IPv4LL fallback) on the event loop.
//!
//! It owns the state machines, the sockets and the timers, and reports leases to the daemon
//! over a channel. It never configures addresses: the daemon does that on the events.

use crate::caps::DHCP_RX_BUFFER;
pub use crate::dhcp::acd::ConflictDetection;
use crate::dhcp::acquire::{earliest, Acquire};
use crate::dhcp::client::{IfName, Outgoing, PollAt, State, Transport};
use crate::dhcp::socket::{self, ArpSocket, Datagram, RawRecv, RawSocket, UdpSock};
use crate::dhcp::{seed_from_mac, Prng};
use crate::wire::dhcpv4::{self, CLIENT_PORT, SERVER_PORT};
use crate::wire::{arp, ipv4udp};
use log::{debug, info, warn};
use smol::channel::{Receiver, Sender};
use smol::future::{self, FutureExt};
use smol::{LocalExecutor, Task, Timer};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

/// Wait before retrying a socket that failed to open (interface missing, no permission).
const SOCKET_RETRY: Duration = Duration::from_secs(5);

pub use crate::dhcp::acquire::DhcpEventKind;

/// An event for the daemon, tagged with the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpEvent {
    /// Interface index.
    pub ifindex: u32,
    /// What happened.
    pub kind: DhcpEventKind,
}

/// Control of a running DHCP task. Dropping it cancels the task without RELEASE.
#[derive(Debug)]
pub struct DhcpHandle {
    stop: Sender<bool>,
    task: Task<()>,
}

impl DhcpHandle {
    /// Ends the task, sending RELEASE first if `release` and a lease is held.
    pub async fn stop(self, release: bool) {
        // A failed send means the task already ended; awaiting it is still right.
        let _ = self.stop.send(release).await;
        self.task.await;
    }
}

/// Starts DHCP on `ifindex`/`ifname` with hardware address `mac`; `remembered` is the last
/// leased address, tried first with INIT-REBOOT; `detection` says whether new addresses are
/// probed with ARP before they are reported (main.conf `AddressConflictDetection`).
pub fn spawn(
    ex: &LocalExecutor<'static>,
    ifindex: u32,
    ifname: &str,
    mac: [u8; 6],
    remembered: Option<Ipv4Addr>,
    detection: ConflictDetection,
    events: Sender<DhcpEvent>,
) -> DhcpHandle {
    let (stop_tx, stop_rx) = smol::channel::bounded(1);
    let name = crate::dhcp::ifname(ifname);
    // Wall-clock nanoseconds make xids differ between boots of identical boards.
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = Prng::new(seed_from_mac(mac) ^ nanos).next_u32();
    let driver = Driver {
        acquire: Acquire::new(name.clone(), mac, seed, remembered, detection),
        ifindex,
        ifname: name,
        raw: None,
        udp: None,
        arp: None,
        retry_sockets_at: None,
        events,
    };
    let task = ex.spawn(driver.run(stop_rx));
    DhcpHandle {
        stop: stop_tx,
        task,
    }
}

struct Driver {
    acquire: Acquire,
    ifindex: u32,
    ifname: IfName,
    raw: Option<RawSocket>,
    udp: Option<UdpSock>,
    arp: Option<ArpSocket>,
    retry_sockets_at: Option<Instant>,
    events: Sender<DhcpEvent>,
}

enum Wake {
    Stop(bool),
    Raw(Result<RawRecv, socket::Error>),
    Udp(Result<Datagram, socket::Error>),
    Arp(Result<Datagram, socket::Error>),
    Timer,
}

impl Driver {
    async fn run(mut self, stop: Receiver<bool>) {
        let mut raw_buf = [0u8; DHCP_RX_BUFFER];
        let mut udp_buf = [0u8; DHCP_RX_BUFFER];
        let mut arp_buf = [0u8; 64];
        loop {
            let now = Instant::now();
            self.step_timers(now).await;
            if !self.forward_events().await {
                return;
            }
            self.ensure_sockets(now);
            let mut deadline = self.acquire.poll_at();
            if let Some(t) = self.retry_sockets_at {
                deadline = earliest(deadline, PollAt::At(t));
            }
            let timer = async {
                match deadline {
                    PollAt::Now => {}
                    PollAt::At(t) => {
                        Timer::at(t).await;
                    }
                    PollAt::Idle => future::pending::<()>().await,
                }
                Wake::Timer
            };
            let stop_f = async {
                match stop.recv().await {
                    Ok(release) => Wake::Stop(release),
                    // Every sender gone: the handle was dropped, end without RELEASE.
                    Err(_) => Wake::Stop(false),
                }
            };
            let raw_f = async {
                match &self.raw {
                    Some(s) => Wake::Raw(s.recv(&mut raw_buf).await),
                    None => future::pending().await,
                }
            };
            let udp_f = async {
                match &self.udp {
                    Some(s) => Wake::Udp(s.recv(&mut udp_buf).await),
                    None => future::pending().await,
                }
            };
            let arp_f = async {
                match &self.arp {
                    Some(s) => Wake::Arp(s.recv(&mut arp_buf).await),
                    None => future::pending().await,
                }
            };
            let wake = stop_f.or(raw_f).or(udp_f).or(arp_f).or(timer).await;
            let now = Instant::now();
            match wake {
                Wake::Stop(release) => {
                    if release {
                        self.release(now).await;
                    }
                    info!("{}: DHCP stopped", self.ifname);
                    return;
                }
                // Any big packet on the link can overflow the buffer: drop it, keep the socket.
                Wake::Raw(Ok(r)) if r.datagram.truncated => {
                    debug!("{}: dropped oversized packet (raw)", self.ifname)
                }
                Wake::Udp(Ok(d)) | Wake::Arp(Ok(d)) if d.truncated => {
                    debug!("{}: dropped oversized datagram", self.ifname)
                }
                Wake::Raw(Ok(r)) => self.on_raw(
                    now,
                    &raw_buf[..r.datagram.len.min(raw_buf.len())],
                    r.csum_not_ready,
                ),
                Wake::Udp(Ok(d)) => self.on_dhcp(now, &udp_buf[..d.len.min(udp_buf.len())]),
                Wake::Arp(Ok(d)) => self.on_arp(now, &arp_buf[..d.len.min(arp_buf.len())]),
                Wake::Raw(Err(e)) => {
                    warn!("{}: DHCP raw socket: {e}", self.ifname);
                    self.raw = None;
                    self.retry_sockets_at = Some(now + SOCKET_RETRY);
                }
                Wake::Udp(Err(e)) => {
                    warn!("{}: DHCP UDP socket: {e}", self.ifname);
                    self.udp = None;
                }
                Wake::Arp(Err(e)) => {
                    warn!("{}: ARP socket: {e}", self.ifname);
                    self.arp = None;
                    self.retry_sockets_at = Some(now + SOCKET_RETRY);
                }
                Wake::Timer => {}
            }
        }
    }

    /// Which sockets the current state needs: raw while no address is usable or in
    /// REBINDING, or as fallback when UDP is unavailable; ARP while IPv4LL or the address
    /// probe runs.
    fn ensure_sockets(&mut self, now: Instant) {
        if self.retry_sockets_at.is_some_and(|t| now < t) {
            return;
        }
        self.retry_sockets_at = None;
        let state = self.acquire.state();
        let needs_raw = match state {
            State::Bound | State::Released => false,
            State::Renewing => self.udp.is_none(),
            _ => true,
        };
        if !needs_raw {
            self.raw = None;
        } else if self.raw.is_none() {
            match RawSocket::open(self.ifindex) {
                Ok(s) => self.raw = Some(s),
                Err(e) => {
                    warn!("{}: DHCP raw socket: {e}", self.ifname);
                    self.retry_sockets_at = Some(now + SOCKET_RETRY);
                }
            }
        }
        if !self.acquire.arp_needed() {
            self.arp = None;
        } else if self.arp.is_none() {
            match ArpSocket::open(self.ifindex) {
                Ok(s) => self.arp = Some(s),
                Err(e) => {
                    warn!("{}: ARP socket: {e}", self.ifname);
                    self.retry_sockets_at = Some(now + SOCKET_RETRY);
                }
            }
        }
        if self.acquire.lease().is_none() {
            self.udp = None;
        }
    }

    async fn step_timers(&mut self, now: Instant) {
        let mut buf = [0u8; DHCP_RX_BUFFER];
        if let Some(out) = self.acquire.dispatch_dhcp(now) {
            if let Some(len) = encode(&self.ifname, &out, &mut buf) {
                let (transport, dst, src) = (out.transport, out.dst_addr(), out.src);
                self.send_dhcp(transport, src, dst, &mut buf, len).await;
            }
        }
        let arp_out = self.acquire.dispatch_arp(now);
        if self.acquire.arp_needed() && self.arp.is_none() {
            // Link-local or a probe may have just started: open the socket before sending.
            self.ensure_sockets(now);
        }
        if let Some(pkt) = arp_out {
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

    /// Sends an encoded message (`buf[HEADER_LEN..HEADER_LEN+len]` holds the DHCP payload).
    async fn send_dhcp(
        &mut self,
        transport: Transport,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        buf: &mut [u8],
        len: usize,
    ) {
        let payload_at = ipv4udp::HEADER_LEN;
        if transport == Transport::Udp {
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
                match u.send(&buf[payload_at..payload_at + len], dst).await {
                    Ok(()) => {
                        debug!("{}: sent over UDP from {src} to {dst}", self.ifname);
                        return;
                    }
                    Err(e) => debug!("{}: UDP send to {dst}: {e}, using raw", self.ifname),
                }
            }
        }
        if self.raw.is_none() {
            match RawSocket::open(self.ifindex) {
                Ok(s) => self.raw = Some(s),
                Err(e) => {
                    warn!("{}: DHCP raw socket: {e}", self.ifname);
                    return;
                }
            }
        }
        let hdr = ipv4udp::Repr {
            src_addr: src,
            dst_addr: dst,
            src_port: CLIENT_PORT,
            dst_port: SERVER_PORT,
            payload_len: len,
        };
        if let Err(e) = hdr.emit(buf) {
            warn!("{}: DHCP headers: {e}", self.ifname);
            return;
        }
        if let Some(raw) = &self.raw {
            if let Err(e) = raw.send(&buf[..hdr.buffer_len()]).await {
                warn!("{}: DHCP send: {e}", self.ifname);
            }
        }
    }

    async fn release(&mut self, now: Instant) {
        let mut buf = [0u8; DHCP_RX_BUFFER];
        let sent = self.acquire.release(now).and_then(|out| {
            encode(&self.ifname, &out, &mut buf)
                .map(|len| (out.transport, out.src, out.dst_addr(), len))
        });
        if let Some((transport, src, dst, len)) = sent {
            info!("{}: releasing {src} to {dst}", self.ifname);
            self.send_dhcp(transport, src, dst, &mut buf, len).await;
        }
        self.forward_events().await;
    }

    fn on_raw(&mut self, now: Instant, pkt: &[u8], csum_not_ready: bool) {
        let mode = if csum_not_ready {
            ipv4udp::UdpChecksum::KernelUnfinished
        } else {
            ipv4udp::UdpChecksum::Verify
        };
        match ipv4udp::Repr::parse(&ipv4udp::Ipv4Packet::new_unchecked(pkt), mode) {
            Ok((h, payload)) if h.src_port == SERVER_PORT && h.dst_port == CLIENT_PORT => {
                self.on_dhcp(now, payload)
            }
            Ok(_) => {}
            Err(e) => debug!("{}: dropped packet: {e}", self.ifname),
        }
    }

    fn on_dhcp(&mut self, now: Instant, payload: &[u8]) {
        match dhcpv4::Repr::parse(&dhcpv4::Packet::new_unchecked(payload)) {
            Ok(r) => self.acquire.process_dhcp(now, &r),
            Err(e) => debug!("{}: dropped DHCP message: {e}", self.ifname),
        }
    }

    fn on_arp(&mut self, now: Instant, pkt: &[u8]) {
        if !self.acquire.arp_needed() {
            return;
        }
        match arp::Repr::parse(&arp::Packet::new_unchecked(pkt)) {
            Ok(r) => self.acquire.process_arp(now, &r),
            Err(e) => debug!("{}: dropped ARP: {e}", self.ifname),
        }
    }

    /// Sends pending events to the daemon; false when no one listens any more.
    async fn forward_events(&mut self) -> bool {
        let mut out: heapless::Vec<DhcpEventKind, 8> = heapless::Vec::new();
        while let Some(kind) = self.acquire.poll_event() {
            match &kind {
                DhcpEventKind::Bound(lease) => {
                    info!(
                        "{}: bound {}/{}",
                        self.ifname, lease.address, lease.prefix_len
                    );
                    if !self.acquire.arp_needed() {
                        self.arp = None;
                    }
                }
                DhcpEventKind::Lost => {
                    info!("{}: lease lost", self.ifname);
                    self.udp = None;
                }
                _ => {}
            }
            let _ = out.push(kind);
        }
        for kind in out {
            let ev = DhcpEvent {
                ifindex: self.ifindex,
                kind,
            };
            if self.events.send(ev).await.is_err() {
                debug!("{}: event receiver gone, stopping DHCP", self.ifname);
                return false;
            }
        }
        true
    }
}

/// Emits the DHCP payload of `out` at `buf[ipv4udp::HEADER_LEN..]`; returns its length.
fn encode(ifname: &str, out: &Outgoing<'_>, buf: &mut [u8]) -> Option<usize> {
    let len = out.repr.buffer_len();
    let dst = buf.get_mut(ipv4udp::HEADER_LEN..)?;
    match out.repr.emit(&mut dhcpv4::Packet::new_unchecked(dst)) {
        Ok(()) => Some(len),
        Err(e) => {
            warn!(
                "{ifname}: cannot encode DHCP {:?}: {e}",
                out.repr.message_type
            );
            None
        }
    }
}
