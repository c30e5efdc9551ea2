//! The sockets of the SNTP task: one unconnected UDP socket per address
//! family, opened when first needed, carrying both the NTP requests and the
//! DNS queries for server names. Replies are told apart by their source port
//! (53 is DNS); each machine then checks address, port and cookie itself.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use smol::future::FutureExt;
use smol::Async;

use crate::task::Transport;
use crate::time::task::{SntpInput, SntpOutput, SntpTask};

/// Large enough for an NTP header with extensions and a DNS answer over UDP.
const RX_BUFFER: usize = crate::caps::DNS_MAX_MESSAGE;

/// The SNTP task's sockets.
#[derive(Default)]
pub struct NtpSockets {
    v4: Option<Async<UdpSocket>>,
    v6: Option<Async<UdpSocket>>,
}

impl NtpSockets {
    /// No socket yet; each opens on first use.
    pub fn new() -> NtpSockets {
        NtpSockets::default()
    }

    fn socket(&mut self, to: &SocketAddr) -> io::Result<&Async<UdpSocket>> {
        let slot = if to.is_ipv4() {
            &mut self.v4
        } else {
            &mut self.v6
        };
        if slot.is_none() {
            let any: SocketAddr = if to.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            };
            *slot = Some(Async::<UdpSocket>::bind(any)?);
        }
        Ok(slot.as_ref().expect("just opened"))
    }
}

async fn recv_on(sock: &Option<Async<UdpSocket>>) -> (SocketAddr, Vec<u8>) {
    let Some(s) = sock else {
        return std::future::pending().await;
    };
    let mut buf = [0u8; RX_BUFFER];
    loop {
        match s.recv_from(&mut buf).await {
            Ok((n, from)) => return (from, buf[..n].to_vec()),
            Err(e) => {
                log::debug!("SNTP: receive: {e}");
                // An ICMP error reported on the socket; wait for the next datagram.
                smol::Timer::after(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

impl Transport<SntpTask> for NtpSockets {
    async fn recv(&mut self) -> SntpInput {
        let (from, bytes) = recv_on(&self.v4).or(recv_on(&self.v6)).await;
        if from.port() == 53 {
            SntpInput::Dns { from, bytes }
        } else {
            SntpInput::Ntp { from, bytes }
        }
    }

    async fn send(&mut self, _: &SntpTask, out: SntpOutput) {
        let (to, bytes): (SocketAddr, &[u8]) = match &out {
            SntpOutput::Ntp(o) => (o.to, &o.bytes),
            SntpOutput::Dns(q) => (q.to, q.bytes()),
        };
        let sock = match self.socket(&to) {
            Ok(s) => s,
            Err(e) => {
                log::info!("SNTP: no socket for {to}: {e}");
                return;
            }
        };
        if let Err(e) = sock.send_to(bytes, to).await {
            log::info!("SNTP: send to {to}: {e}");
        }
    }
}
