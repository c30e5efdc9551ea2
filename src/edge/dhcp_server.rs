//! The tethering DHCP server's sockets: UDP port 67 on the bridge for what clients send
//! and for broadcast/unicast/relay replies, a packet socket for replies to a client's MAC
//! (it has no address yet), and the leases file, written atomically after every change.
//! No protocol logic here (that is [`crate::dhcp::server::Server`]).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::caps::DHCP_RX_BUFFER;
use crate::dhcp::server::{Datagram, Destination, Event, Reply, Server};
use crate::edge::packet::{FrameSender, ServerSock};
use crate::task::{Now, Transport};
use crate::wire::dhcpv4::{CLIENT_PORT, SERVER_PORT};
use crate::wire::ipv4udp;

/// Wait before retrying a socket that failed to open (the bridge not up yet).
const SOCKET_RETRY: Duration = Duration::from_secs(1);

/// The server's sockets on one bridge.
pub struct ServerSockets {
    ifindex: u32,
    ifname: String,
    sock: Option<ServerSock>,
    frames: Option<FrameSender>,
    retry_at: Option<Instant>,
    leases: PathBuf,
    buf: Box<[u8; DHCP_RX_BUFFER]>,
}

impl ServerSockets {
    /// Sockets on `ifname` (`ifindex`); the leases go to `leases`.
    pub fn new(ifindex: u32, ifname: &str, leases: PathBuf) -> ServerSockets {
        ServerSockets {
            ifindex,
            ifname: ifname.to_string(),
            sock: None,
            frames: None,
            retry_at: None,
            leases,
            buf: Box::new([0; DHCP_RX_BUFFER]),
        }
    }

    fn open(&mut self) -> Result<(), crate::edge::packet::Error> {
        if self.sock.is_none() {
            self.sock = Some(ServerSock::open(&self.ifname)?);
        }
        if self.frames.is_none() {
            self.frames = Some(FrameSender::open(self.ifindex)?);
        }
        Ok(())
    }
}

/// The frame sender (a packet socket) is closed on the worker: its close
/// waits for an RCU grace period, which would hold the loop as tethering stops.
impl Drop for ServerSockets {
    fn drop(&mut self) {
        if let Some(f) = self.frames.take() {
            crate::edge::worker::drop_later(f);
        }
    }
}

impl Transport<Server> for ServerSockets {
    async fn recv(&mut self) -> Datagram {
        loop {
            let Some(sock) = &self.sock else {
                return std::future::pending().await;
            };
            match sock.recv(&mut self.buf[..]).await {
                Ok((d, src)) if !d.truncated => {
                    return Datagram {
                        bytes: self.buf[..d.len].to_vec(),
                        src,
                    }
                }
                Ok((_, src)) => log::debug!(
                    "{}: dhcp server: oversized datagram from {src} dropped",
                    self.ifname
                ),
                Err(e) => {
                    log::warn!("{}: dhcp server: {e}", self.ifname);
                    self.sock = None;
                    self.retry_at = Some(Instant::now() + SOCKET_RETRY);
                }
            }
        }
    }

    async fn send(&mut self, machine: &Server, out: Reply) {
        let Some(sock) = &self.sock else { return };
        let to = |ip| SocketAddrV4::new(ip, CLIENT_PORT);
        let res = match out.dst {
            Destination::Broadcast => sock.send(&out.bytes, to(Ipv4Addr::BROADCAST)).await,
            Destination::Unicast(ip) => sock.send(&out.bytes, to(ip)).await,
            Destination::Relay(ip) => {
                sock.send(&out.bytes, SocketAddrV4::new(ip, SERVER_PORT))
                    .await
            }
            Destination::Frame { mac, ip } => {
                let Some(frames) = &self.frames else { return };
                let udp = ipv4udp::Repr {
                    src_addr: machine.config().server,
                    dst_addr: ip,
                    src_port: SERVER_PORT,
                    dst_port: CLIENT_PORT,
                    payload_len: out.bytes.len(),
                };
                let mut pkt = vec![0u8; udp.buffer_len()];
                pkt[ipv4udp::HEADER_LEN..].copy_from_slice(&out.bytes);
                if udp.emit(&mut pkt).is_err() {
                    return;
                }
                frames.send(&pkt, mac).await
            }
        };
        if let Err(e) = res {
            log::warn!(
                "{}: dhcp server: reply to {:?} not sent: {e}",
                self.ifname,
                out.dst
            );
        }
    }

    fn prepare(&mut self, _machine: &Server, now: Instant) -> Option<Instant> {
        if self.sock.is_some() && self.frames.is_some() {
            return None;
        }
        if self.retry_at.is_some_and(|t| t > now) {
            return self.retry_at;
        }
        match self.open() {
            Ok(()) => {
                log::debug!("{}: dhcp server: listening", self.ifname);
                self.retry_at = None;
                None
            }
            Err(e) => {
                log::warn!(
                    "{}: dhcp server: cannot open its sockets: {e}; retrying",
                    self.ifname
                );
                self.retry_at = Some(now + SOCKET_RETRY);
                self.retry_at
            }
        }
    }

    fn on_event(&mut self, machine: &Server, event: &Event) {
        let Event::LeasesChanged { .. } = event;
        let text = crate::dhcp::leases::encode(machine.bindings(), &Now::read());
        if let Err(e) = crate::config::store::write_atomic(&self.leases, text.as_bytes()) {
            log::warn!(
                "dhcp server: leases not saved to {}: {e}",
                self.leases.display()
            );
        }
    }
}
