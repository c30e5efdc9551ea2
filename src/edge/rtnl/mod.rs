//! The rtnetlink edge: dumps of links, addresses, routes and rules, batched
//! changes with per-op acks, and the multicast event stream. The messages are
//! pathman's own pure codec (`encode`, `decode`); the daemon never runs `ip`.

mod consts;
mod decode;
mod encode;
#[cfg(test)]
mod tests;

use crate::edge::netlink::{messages, recv_datagram, Answer, Collect, NlError, NlSocket};
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use netlink_packet_core::NetlinkBuffer;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use smol::Async;

use crate::caps;
use crate::core::netstate::{AddressSpec, Op, RouteSpec, RuleSpec};
use crate::core::types::IfName;

use consts::{RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, RTM_NEWRULE};
pub use decode::{
    decode_address, decode_event, decode_link, decode_route, decode_rule, parse_message,
};
use encode::DumpKind;

/// Receive buffer size. The kernel caps dump datagrams at 32 KiB
/// (`netlink_dump`), and a single link message stays far below that.
const RX_BUF_LEN: usize = 32 * 1024;
/// A failed rtnetlink operation (the netlink edges' one error type).
pub type RtnlError = NlError;

fn err(op: &'static str, errno: i32) -> RtnlError {
    NlError::new("rtnl", op, errno)
}

fn io_err(op: &'static str, e: &io::Error) -> RtnlError {
    NlError::io("rtnl", op, e)
}

/// A kernel interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: IfName,
    /// Hardware address when it is a 6-byte MAC.
    pub mac: Option<[u8; 6]>,
    /// IFF_UP: administratively up.
    pub up: bool,
    /// IFF_LOWER_UP: carrier.
    pub carrier: bool,
    /// IFF_LOOPBACK.
    pub loopback: bool,
    /// ARPHRD_* link type.
    pub arphrd: u16,
    pub mtu: u32,
    /// IFLA_MASTER: the bridge (or bond) it is a port of.
    pub master: Option<u32>,
}

/// An interface address as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrEntry {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IFA_PROTO; 0 when absent. Pathman's addresses carry `RT_PROTO_PATHMAN`.
    pub proto: u8,
    /// IPv6 duplicate address detection still running.
    pub tentative: bool,
    /// RT_SCOPE_* of the address.
    pub scope: u8,
    /// No lifetime (static, not SLAAC/DHCP-with-lifetime).
    pub permanent: bool,
}

impl AddrEntry {
    /// The address as pathman plans it (what a dump compares against).
    pub fn spec(&self) -> AddressSpec {
        AddressSpec {
            ifindex: self.ifindex,
            addr: self.addr,
            prefix_len: self.prefix_len,
        }
    }
}

/// A route as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRoute {
    pub spec: RouteSpec,
    /// RTPROT_*; pathman's routes carry `RT_PROTO_PATHMAN`.
    pub proto: u8,
    /// RTN_UNICAST (not local, broadcast, unreachable…).
    pub kind_unicast: bool,
}

/// A policy rule as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRule {
    pub spec: RuleSpec,
    /// FRA_PROTOCOL; pathman's rules carry `RT_PROTO_PATHMAN`.
    pub proto: u8,
}

/// A change the kernel announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEvent {
    /// A link appeared or changed (flags, carrier, name, MTU…).
    Link(Link),
    /// The link with this ifindex is gone.
    LinkRemoved(u32),
    AddrAdded(AddrEntry),
    AddrRemoved(AddrEntry),
    RouteAdded(KernelRoute),
    RouteRemoved(KernelRoute),
    RuleAdded(KernelRule),
    RuleRemoved(KernelRule),
    /// ENOBUFS: events were lost; the caller re-dumps everything.
    Overrun,
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::AddAddress(_) => "add address",
        Op::DelAddress(_) => "delete address",
        Op::AddRoute(_) => "add route",
        Op::DelRoute(_) => "delete route",
        Op::AddRule(_) => "add rule",
        Op::DelRule(_) => "delete rule",
    }
}

/// Errors that mean "already as wanted": the reconciler may repeat itself
/// (after a restart or an overrun) without failing.
fn already_done(op: &Op, errno: i32) -> bool {
    match op {
        Op::AddAddress(_) | Op::AddRoute(_) | Op::AddRule(_) => errno == libc::EEXIST,
        // EADDRNOTAVAIL: what address deletes say for a missing address;
        // ENODEV: the interface is gone, and with it its addresses and routes.
        Op::DelAddress(_) | Op::DelRoute(_) | Op::DelRule(_) => matches!(
            errno,
            libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL | libc::ENODEV
        ),
    }
}

/// Opens a NETLINK_ROUTE socket for events.
fn open_socket(op: &'static str) -> Result<Socket, RtnlError> {
    let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| io_err(op, &e))?;
    sock.bind_auto().map_err(|e| io_err(op, &e))?;
    Ok(sock)
}

/// Request socket: dumps and changes. One request batch at a time
/// (`&mut self`); replies are matched to requests by sequence number.
pub struct Rtnl {
    sock: NlSocket,
    tx: Vec<u8>,
}

impl Rtnl {
    /// Opens the request socket in the network namespace of the calling thread.
    pub fn open() -> Result<Rtnl, RtnlError> {
        Ok(Rtnl {
            sock: NlSocket::open("rtnl", NETLINK_ROUTE, RX_BUF_LEN, false)?,
            tx: Vec::with_capacity(4096),
        })
    }

    /// Sends what `tx` holds (requests `first..first + status.len()`) and
    /// fills `status` with each request's errno; dump data goes to `on_data`.
    async fn exchange(
        &mut self,
        op: &'static str,
        first: u32,
        status: &mut [Answer],
        on_data: &mut dyn FnMut(u16, &[u8]),
    ) -> Result<bool, RtnlError> {
        let Rtnl { sock, tx, .. } = self;
        sock.exchange(op, tx, first, status, Collect::Every, &mut |msg| {
            deliver(msg, on_data)
        })
        .await
    }

    /// Dumps one kind of object (`decode` reads the body of each message of
    /// type `want`), retrying once if the kernel says the dump
    /// was interrupted by a concurrent change.
    async fn dump<T>(
        &mut self,
        op: &'static str,
        kind: DumpKind,
        want: u16,
        decode: fn(&[u8]) -> Option<T>,
    ) -> Result<Vec<T>, RtnlError> {
        let mut out = Vec::new();
        for _ in 0..2 {
            out.clear();
            self.tx.clear();
            let seq = self.sock.take_seq(1);
            encode::push_dump(&mut self.tx, seq, kind);
            let mut status = [Answer::default()];
            let interrupted = self
                .exchange(op, seq, &mut status, &mut |t, body| {
                    if t == want {
                        out.extend(decode(body))
                    }
                })
                .await?;
            match status[0].errno {
                Some(0) | None if !interrupted => return Ok(out),
                Some(0) | None => log::debug!("rtnl: {op} interrupted, retrying"),
                Some(errno) => return Err(err(op, errno)),
            }
        }
        Err(err(op, libc::EINTR))
    }

    /// All links.
    pub async fn dump_links(&mut self) -> Result<Vec<Link>, RtnlError> {
        self.dump("dump links", DumpKind::Links, RTM_NEWLINK, decode_link)
            .await
    }

    /// All IPv4 and IPv6 addresses of all links.
    pub async fn dump_addresses(&mut self) -> Result<Vec<AddrEntry>, RtnlError> {
        self.dump(
            "dump addresses",
            DumpKind::Addresses,
            RTM_NEWADDR,
            decode_address,
        )
        .await
    }

    /// All IPv4 and IPv6 routes of all tables (local and broadcast too:
    /// filter on `kind_unicast` / `proto`).
    pub async fn dump_routes(&mut self) -> Result<Vec<KernelRoute>, RtnlError> {
        self.dump("dump routes", DumpKind::Routes, RTM_NEWROUTE, decode_route)
            .await
    }

    /// All IPv4 and IPv6 policy rules.
    pub async fn dump_rules(&mut self) -> Result<Vec<KernelRule>, RtnlError> {
        self.dump("dump rules", DumpKind::Rules, RTM_NEWRULE, decode_rule)
            .await
    }

    /// Sends the ops in datagrams of at most `caps::RTNL_OPS_PER_BATCH` (each
    /// op acked under its own sequence number), collecting the acks of one
    /// datagram before sending the next, so the acks never overrun the
    /// socket's receive buffer however large the change; returns one result
    /// per op, in order. The kernel applies each op on its own: a failed op
    /// does not stop the ones after it. EEXIST on add and ENOENT/ESRCH (and
    /// the equivalents listed in `already_done`) on delete count as success.
    pub async fn apply(&mut self, ops: &[Op]) -> Vec<Result<(), RtnlError>> {
        let mut results = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(caps::RTNL_OPS_PER_BATCH) {
            results.extend(self.apply_batch(chunk).await);
        }
        results
    }

    async fn apply_batch(&mut self, ops: &[Op]) -> Vec<Result<(), RtnlError>> {
        self.tx.clear();
        let first = self.sock.take_seq(ops.len());
        for (i, op) in ops.iter().enumerate() {
            encode::push_op(&mut self.tx, first.wrapping_add(i as u32), op);
        }
        let mut status = vec![Answer::default(); ops.len()];
        let io_errno = match self
            .exchange("apply", first, &mut status, &mut |_, _| {})
            .await
        {
            Ok(_) => libc::EIO,
            Err(e) => e.errno,
        };
        ops.iter()
            .zip(status)
            .map(|(op, st)| match st.errno {
                Some(0) => Ok(()),
                Some(errno) if already_done(op, errno) => Ok(()),
                Some(errno) => Err(err(op_name(op), errno)),
                None => Err(err(op_name(op), io_errno)),
            })
            .collect()
    }

    /// Sets or clears IFF_UP of a link, leaving its other flags alone.
    pub async fn set_link_up(&mut self, ifindex: u32, up: bool) -> Result<(), RtnlError> {
        self.link_request("set link up/down", |tx, seq| {
            encode::push_set_link_up(tx, seq, ifindex, up)
        })
        .await
    }

    /// Creates a bridge, up (tethering).
    pub async fn new_bridge(&mut self, name: &str) -> Result<(), RtnlError> {
        self.link_request("create bridge", |tx, seq| {
            encode::push_new_bridge(tx, seq, name)
        })
        .await
    }

    /// Makes `ifindex` a port of `master`, or of nothing with 0.
    pub async fn set_master(&mut self, ifindex: u32, master: u32) -> Result<(), RtnlError> {
        self.link_request("set link master", |tx, seq| {
            encode::push_set_master(tx, seq, ifindex, master)
        })
        .await
    }

    /// Deletes a link (the tethering bridge).
    pub async fn del_link(&mut self, ifindex: u32) -> Result<(), RtnlError> {
        self.link_request("delete link", |tx, seq| {
            encode::push_del_link(tx, seq, ifindex)
        })
        .await
    }

    /// One link request and its ack.
    async fn link_request(
        &mut self,
        op: &'static str,
        build: impl FnOnce(&mut Vec<u8>, u32),
    ) -> Result<(), RtnlError> {
        self.tx.clear();
        let seq = self.sock.take_seq(1);
        build(&mut self.tx, seq);
        let mut status = [Answer::default()];
        self.exchange(op, seq, &mut status, &mut |_, _| {}).await?;
        match status[0].errno {
            Some(0) => Ok(()),
            Some(errno) => Err(err(op, errno)),
            None => Err(err(op, libc::EIO)),
        }
    }
}

/// Hands one data message's type and body on; a message whose header does
/// not fit is skipped.
fn deliver(msg: NetlinkBuffer<&[u8]>, on_data: &mut dyn FnMut(u16, &[u8])) {
    match parse_message(msg.into_inner()) {
        Some((kind, body)) => on_data(kind, body),
        None => log::debug!("rtnl: skipping a message whose length does not fit"),
    }
}

/// Multicast socket for link, address, route and rule changes (IPv4 and IPv6).
pub struct Events {
    sock: Async<Socket>,
    rx: Vec<u8>,
}

impl Events {
    /// Opens the event socket in the network namespace of the calling
    /// thread and joins the groups.
    pub fn open() -> Result<Events, RtnlError> {
        const OP: &str = "open event socket";
        let sock = open_socket(OP)?;
        for group in [
            libc::RTNLGRP_LINK,
            libc::RTNLGRP_IPV4_IFADDR,
            libc::RTNLGRP_IPV6_IFADDR,
            libc::RTNLGRP_IPV4_ROUTE,
            libc::RTNLGRP_IPV6_ROUTE,
            libc::RTNLGRP_IPV4_RULE,
            libc::RTNLGRP_IPV6_RULE,
        ] {
            sock.add_membership(group).map_err(|e| io_err(OP, &e))?;
        }
        set_rcvbuf(&sock, caps::RTNL_EVENT_RCVBUF);
        Ok(Events {
            sock: Async::new(sock).map_err(|e| io_err(OP, &e))?,
            rx: vec![0; RX_BUF_LEN],
        })
    }

    /// Waits for the next datagram and appends an event for every message
    /// in it that pathman cares about (possibly none). ENOBUFS becomes
    /// [`KernelEvent::Overrun`].
    pub async fn next(&mut self, out: &mut Vec<KernelEvent>) -> Result<(), RtnlError> {
        let n = match recv_datagram("rtnl", &self.sock, &mut self.rx).await {
            Ok(n) => n,
            // A cut-off datagram lost events just as an overrun does.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EMSGSIZE)) => {
                out.push(KernelEvent::Overrun);
                return Ok(());
            }
            Err(e) => return Err(io_err("receive events", &e)),
        };
        for msg in messages("rtnl", &self.rx[..n]) {
            out.extend(decode_event(msg.into_inner()));
        }
        Ok(())
    }
}

/// Grows the kernel receive buffer. SO_RCVBUFFORCE (root/CAP_NET_ADMIN)
/// passes `net.core.rmem_max`; without the capability fall back to the
/// capped SO_RCVBUF.
fn set_rcvbuf(sock: &Socket, size: usize) {
    let val = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt on an owned, open fd with a c_int option value.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        if let Err(e) = sock.set_rx_buf_sz(size) {
            log::warn!("rtnl: cannot grow event socket buffer: {e}");
        }
    }
}
