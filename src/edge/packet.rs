//! The I/O edge of the DHCP client and IPv4LL: packet and UDP sockets wrapped in
//! `smol::Async`. No protocol logic here.

use core::fmt;
use smol::Async;
use std::io;
use std::mem::{size_of, size_of_val, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Errors at the socket edge: the syscall that failed and the OS error.
#[derive(Debug)]
pub enum Error {
    /// A syscall failed.
    Sys {
        /// Which operation.
        op: &'static str,
        /// The OS error.
        err: io::Error,
    },
    /// The interface index or name does not fit the kernel's types.
    BadInterface,
    /// The kernel accepted fewer bytes than the packet has.
    ShortSend(usize),
    /// The leased address is not (yet) configured on the interface.
    AddressNotConfigured(Ipv4Addr),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { op, err } => write!(f, "{op}: {err}"),
            Error::BadInterface => write!(f, "bad interface index or name"),
            Error::ShortSend(n) => write!(f, "short send ({n} bytes)"),
            Error::AddressNotConfigured(a) => write!(f, "{a} is not configured on the interface"),
        }
    }
}

impl std::error::Error for Error {}

pub(crate) fn sys(op: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |err| Error::Sys { op, err }
}

pub(crate) fn check(op: &'static str, rc: libc::c_int) -> Result<libc::c_int, Error> {
    if rc < 0 {
        return Err(Error::Sys {
            op,
            err: io::Error::last_os_error(),
        });
    }
    Ok(rc)
}

pub(crate) fn setsockopt<T>(
    fd: RawFd,
    level: i32,
    name: i32,
    val: &T,
    op: &'static str,
) -> Result<(), Error> {
    // SAFETY: `val` is a live reference of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    check(op, rc).map(|_| ())
}

fn packet_socket(protocol: u16) -> Result<OwnedFd, Error> {
    // SAFETY: plain syscall; the fd is owned below.
    let fd = check("socket(AF_PACKET)", unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            i32::from(protocol.to_be()),
        )
    })?;
    // SAFETY: `fd` was just returned by socket() and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr_ll(ifindex: u32, protocol: u16, broadcast: bool) -> Result<libc::sockaddr_ll, Error> {
    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut a: libc::sockaddr_ll = unsafe { zeroed() };
    a.sll_family = libc::AF_PACKET as u16;
    a.sll_protocol = protocol.to_be();
    a.sll_ifindex = i32::try_from(ifindex).map_err(|_| Error::BadInterface)?;
    if broadcast {
        a.sll_halen = 6;
        a.sll_addr[..6].fill(0xff);
    }
    Ok(a)
}

fn bind_ll(fd: RawFd, ifindex: u32, protocol: u16) -> Result<(), Error> {
    let a = sockaddr_ll(ifindex, protocol, false)?;
    // SAFETY: `a` is a valid sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            fd,
            (&a as *const libc::sockaddr_ll).cast(),
            size_of_val(&a) as libc::socklen_t,
        )
    };
    check("bind(AF_PACKET)", rc).map(|_| ())
}

fn send_ll(fd: RawFd, ifindex: u32, protocol: u16, data: &[u8]) -> io::Result<usize> {
    let a = sockaddr_ll(ifindex, protocol, true)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    send_to(fd, data, &a)
}

/// sendto(2) to a socket address of any family (`sockaddr_ll`, `sockaddr_in`).
pub(crate) fn send_to<A>(fd: RawFd, data: &[u8], addr: &A) -> io::Result<usize> {
    // SAFETY: `data` and `addr` are live for the call, sizes match.
    let n = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            0,
            (addr as *const A).cast(),
            size_of::<A>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// An IPv4 socket address for libc.
pub(crate) fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is valid.
    let mut sa: libc::sockaddr_in = unsafe { zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = a.port().to_be();
    sa.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    sa
}

const ETH_P_IP: u16 = libc::ETH_P_IP as u16;
const ETH_P_ARP: u16 = libc::ETH_P_ARP as u16;

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

// Classic BPF over the IPv4 header (SOCK_DGRAM sockets see no link header): accept
// UDP, unfragmented, to port 68; drop everything else in the kernel.
const BPF_LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
const BPF_LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
const BPF_LD_H_IND: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_IND) as u16;
const BPF_LDX_B_MSH: u16 = (libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

const DHCP_CLIENT_FILTER: [libc::sock_filter; 9] = [
    stmt(BPF_LD_B_ABS, 9),
    jump(BPF_JEQ_K, libc::IPPROTO_UDP as u32, 0, 6),
    stmt(BPF_LD_H_ABS, 6),
    jump(BPF_JSET_K, 0x3fff, 4, 0),
    stmt(BPF_LDX_B_MSH, 0),
    stmt(BPF_LD_H_IND, 2),
    jump(BPF_JEQ_K, 68, 0, 1),
    stmt(BPF_RET_K, 0xffff),
    stmt(BPF_RET_K, 0),
];

/// Accepts nothing: a parked packet socket.
const DROP_ALL_FILTER: [libc::sock_filter; 1] = [stmt(BPF_RET_K, 0)];

/// Attaches a classic BPF program (the kernel swaps filters under RCU, without the grace
/// period that closing or rebinding a packet socket waits for).
fn attach_filter(fd: RawFd, prog: &[libc::sock_filter]) -> Result<(), Error> {
    let prog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        &prog,
        "SO_ATTACH_FILTER",
    )
}

/// Discards what the socket queued while parked.
fn drain(fd: RawFd) {
    let mut buf = [0u8; 64];
    // SAFETY: buf is a live buffer of the size given; MSG_DONTWAIT never blocks.
    while unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    } >= 0
    {}
}

/// One received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes in the buffer (never more than its length).
    pub len: usize,
    /// The datagram was larger than the buffer and is cut: the caller drops it. Not an error,
    /// because any big packet on the link (jumbo frame, another client's reply) can cause it.
    pub truncated: bool,
}

impl Datagram {
    /// From `recv(…, MSG_TRUNC)`'s result (the datagram's real length), the buffer length and
    /// the returned `msg_flags`.
    fn new(real_len: usize, buf_len: usize, msg_flags: libc::c_int) -> Self {
        Datagram {
            len: real_len.min(buf_len),
            truncated: real_len > buf_len || msg_flags & libc::MSG_TRUNC != 0,
        }
    }
}

/// One received frame on the raw socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecv {
    /// The IPv4 packet's length in the buffer, and whether it was cut.
    pub datagram: Datagram,
    /// The kernel left the UDP checksum unfinished (`TP_STATUS_CSUMNOTREADY`): do not verify.
    pub csum_not_ready: bool,
}

/// `AF_PACKET`/`SOCK_DGRAM`/`ETH_P_IP` socket for DHCP before an address exists.
#[derive(Debug)]
pub struct RawSocket {
    fd: Async<OwnedFd>,
    ifindex: u32,
}

impl RawSocket {
    /// Opens the socket on `ifindex` with the DHCP-client BPF filter and `PACKET_AUXDATA`.
    pub fn open(ifindex: u32) -> Result<Self, Error> {
        // Protocol 0 receives nothing until bind, so no unfiltered packet is queued.
        let fd = packet_socket(0)?;
        let raw = fd.as_raw_fd();
        attach_filter(raw, &DHCP_CLIENT_FILTER)?;
        let one: libc::c_int = 1;
        setsockopt(
            raw,
            libc::SOL_PACKET,
            libc::PACKET_AUXDATA,
            &one,
            "PACKET_AUXDATA",
        )?;
        bind_ll(raw, ifindex, ETH_P_IP)?;
        let fd = Async::new(fd).map_err(sys("Async::new"))?;
        Ok(RawSocket { fd, ifindex })
    }

    /// Parks the socket (`false`: it receives nothing) or takes it back into use.
    /// Closing a packet socket waits for an RCU grace period in the kernel (10–25 ms
    /// seen here), which would stall the single-threaded loop right when a lease is
    /// bound; a parked socket costs only its fd until the DHCP task ends.
    pub fn set_active(&self, active: bool) -> Result<(), Error> {
        let fd = self.fd.as_raw_fd();
        if active {
            attach_filter(fd, &DHCP_CLIENT_FILTER)?;
            drain(fd);
            Ok(())
        } else {
            attach_filter(fd, &DROP_ALL_FILTER)
        }
    }

    /// Receives one IPv4 packet into `buf`.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<RawRecv, Error> {
        self.fd
            .read_with(|fd| recv_aux(fd.as_raw_fd(), buf))
            .await
            .map_err(sys("recvmsg(AF_PACKET)"))
    }

    /// Sends one IPv4 packet (headers included) to the Ethernet broadcast address.
    pub async fn send(&self, packet: &[u8]) -> Result<(), Error> {
        let n = self
            .fd
            .write_with(|fd| send_ll(fd.as_raw_fd(), self.ifindex, ETH_P_IP, packet))
            .await
            .map_err(sys("sendto(AF_PACKET)"))?;
        if n != packet.len() {
            return Err(Error::ShortSend(n));
        }
        Ok(())
    }
}

fn recv_aux(fd: RawFd, buf: &mut [u8]) -> io::Result<RawRecv> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64 array keeps the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: msg points at live buffers of the sizes given. MSG_TRUNC makes the kernel
    // return the real length, so an oversized packet is recognised.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_TRUNC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut csum_not_ready = false;
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG macros stay inside it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            let need = libc::CMSG_LEN(size_of::<libc::tpacket_auxdata>() as u32) as usize;
            if h.cmsg_level == libc::SOL_PACKET
                && h.cmsg_type == libc::PACKET_AUXDATA
                && h.cmsg_len as usize >= need
            {
                let aux: libc::tpacket_auxdata =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                csum_not_ready = aux.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(RawRecv {
        datagram: Datagram::new(n as usize, buf.len(), msg.msg_flags),
        csum_not_ready,
    })
}

/// UDP socket on the leased address, port 68, bound to the interface: renewals and RELEASE.
#[derive(Debug)]
pub struct UdpSock {
    sock: Async<UdpSocket>,
    addr: Ipv4Addr,
}

impl UdpSock {
    /// Binds `addr:68` on `ifname`; fails until the address is configured in the kernel.
    pub fn open(ifname: &str, addr: Ipv4Addr) -> Result<Self, Error> {
        // bind() alone is no proof: in a namespace without a local routing table yet, Linux
        // accepts any address, so look the address up on the interface.
        let configured = nix::ifaddrs::getifaddrs()
            .map_err(|e| Error::Sys {
                op: "getifaddrs",
                err: e.into(),
            })?
            .any(|ifa| {
                ifa.interface_name == ifname
                    && ifa
                        .address
                        .as_ref()
                        .and_then(|a| a.as_sockaddr_in())
                        .is_some_and(|sin| sin.ip() == addr)
            });
        if !configured {
            return Err(Error::AddressNotConfigured(addr));
        }
        let fd = udp_on(ifname)?;
        let raw = fd.as_raw_fd();
        bind_in(raw, SocketAddrV4::new(addr, 68))?;
        let sock = UdpSocket::from(fd);
        let sock = Async::new(sock).map_err(sys("Async::new"))?;
        Ok(UdpSock { sock, addr })
    }

    /// The address the socket is bound to.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Receives one DHCP payload.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<Datagram, Error> {
        self.sock
            .read_with(|s| recv_trunc(s.as_raw_fd(), buf))
            .await
            .map_err(sys("recv(UDP)"))
    }

    /// Sends one DHCP payload to `dst:67`.
    pub async fn send(&self, payload: &[u8], dst: Ipv4Addr) -> Result<(), Error> {
        let n = self
            .sock
            .send_to(payload, SocketAddrV4::new(dst, 67))
            .await
            .map_err(sys("sendto(UDP)"))?;
        if n != payload.len() {
            return Err(Error::ShortSend(n));
        }
        Ok(())
    }
}

/// A non-blocking UDP socket with SO_REUSEADDR, bound to `ifname` (SO_BINDTODEVICE),
/// not yet bound to an address: the DHCP client's renewal socket and the server's.
fn udp_on(ifname: &str) -> Result<OwnedFd, Error> {
    // SAFETY: plain syscall; the fd is owned right after.
    let fd = check("socket(AF_INET)", unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: `fd` is fresh and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = fd.as_raw_fd();
    let one: libc::c_int = 1;
    setsockopt(
        raw,
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        &one,
        "SO_REUSEADDR",
    )?;
    let mut name = [0u8; libc::IFNAMSIZ];
    if ifname.is_empty() || ifname.len() >= name.len() {
        return Err(Error::BadInterface);
    }
    name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    setsockopt(
        raw,
        libc::SOL_SOCKET,
        libc::SO_BINDTODEVICE,
        &name,
        "SO_BINDTODEVICE",
    )?;
    Ok(fd)
}

/// `recv` with `MSG_TRUNC`, which std's `recv_from` hides: the real length tells a datagram
/// cut to the buffer from one that fits.
pub(crate) fn recv_trunc(fd: RawFd, buf: &mut [u8]) -> io::Result<Datagram> {
    // SAFETY: `buf` is live and writable for its length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Datagram::new(n as usize, buf.len(), 0))
}

/// std has no bind on an existing socket (needed after SO_BINDTODEVICE), so bind via libc.
pub(crate) fn bind_in(fd: RawFd, addr: SocketAddrV4) -> Result<(), Error> {
    let sa = sockaddr_in(addr);
    // SAFETY: `sa` is a valid sockaddr_in of the size passed.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of_val(&sa) as libc::socklen_t,
        )
    };
    check("bind(UDP)", rc).map(|_| ())
}

/// `AF_PACKET`/`SOCK_DGRAM`/`ETH_P_ARP` socket for IPv4 link-local probing.
#[derive(Debug)]
pub struct ArpSocket {
    fd: Async<OwnedFd>,
    ifindex: u32,
}

impl ArpSocket {
    /// Opens the socket on `ifindex`.
    pub fn open(ifindex: u32) -> Result<Self, Error> {
        let fd = packet_socket(0)?;
        bind_ll(fd.as_raw_fd(), ifindex, ETH_P_ARP)?;
        let fd = Async::new(fd).map_err(sys("Async::new"))?;
        Ok(ArpSocket { fd, ifindex })
    }

    /// Parks the socket or takes it back into use (see [`RawSocket::set_active`]).
    pub fn set_active(&self, active: bool) -> Result<(), Error> {
        let fd = self.fd.as_raw_fd();
        if active {
            let zero: libc::c_int = 0;
            // No filter to detach (never parked) is fine.
            let _ = setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_DETACH_FILTER,
                &zero,
                "SO_DETACH_FILTER",
            );
            drain(fd);
            Ok(())
        } else {
            attach_filter(fd, &DROP_ALL_FILTER)
        }
    }

    /// Receives one ARP packet.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<Datagram, Error> {
        self.fd
            .read_with(|fd| recv_trunc(fd.as_raw_fd(), buf))
            .await
            .map_err(sys("recv(ARP)"))
    }

    /// Sends one ARP packet to the Ethernet broadcast address.
    pub async fn send(&self, packet: &[u8]) -> Result<(), Error> {
        let n = self
            .fd
            .write_with(|fd| send_ll(fd.as_raw_fd(), self.ifindex, ETH_P_ARP, packet))
            .await
            .map_err(sys("sendto(ARP)"))?;
        if n != packet.len() {
            return Err(Error::ShortSend(n));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_datagram_is_marked_not_failed() {
        let fits = Datagram::new(300, 1536, 0);
        assert_eq!(
            fits,
            Datagram {
                len: 300,
                truncated: false
            }
        );
        // MSG_TRUNC in recv flags: the real length exceeds the buffer.
        let big = Datagram::new(9000, 1536, 0);
        assert_eq!(
            big,
            Datagram {
                len: 1536,
                truncated: true
            }
        );
        // MSG_TRUNC reported back in msg_flags alone.
        assert!(Datagram::new(1536, 1536, libc::MSG_TRUNC).truncated);
    }
}

/// Sends IPv4 packets in Ethernet frames to one MAC (`AF_PACKET`/`SOCK_DGRAM`, protocol 0:
/// it receives nothing): the DHCP server's replies to a client that has no address yet
/// (RFC 2131 §4.1: unicast to chaddr and yiaddr).
#[derive(Debug)]
pub struct FrameSender {
    fd: Async<OwnedFd>,
    ifindex: u32,
}

impl FrameSender {
    /// A sender on `ifindex`.
    pub fn open(ifindex: u32) -> Result<Self, Error> {
        let fd = packet_socket(0)?;
        let fd = Async::new(fd).map_err(sys("Async::new"))?;
        Ok(FrameSender { fd, ifindex })
    }

    /// Sends one IPv4 packet (headers included) to `mac`.
    pub async fn send(&self, packet: &[u8], mac: [u8; 6]) -> Result<(), Error> {
        let mut a = sockaddr_ll(self.ifindex, ETH_P_IP, false)?;
        a.sll_halen = 6;
        a.sll_addr[..6].copy_from_slice(&mac);
        let n = self
            .fd
            .write_with(|fd| send_to(fd.as_raw_fd(), packet, &a))
            .await
            .map_err(sys("sendto(AF_PACKET)"))?;
        if n != packet.len() {
            return Err(Error::ShortSend(n));
        }
        Ok(())
    }
}

/// The DHCP server's UDP socket: `0.0.0.0:67` on one interface, broadcasts allowed.
#[derive(Debug)]
pub struct ServerSock {
    sock: Async<UdpSocket>,
}

impl ServerSock {
    /// Binds port 67 on `ifname`.
    pub fn open(ifname: &str) -> Result<Self, Error> {
        let fd = udp_on(ifname)?;
        let raw = fd.as_raw_fd();
        let one: libc::c_int = 1;
        setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_BROADCAST,
            &one,
            "SO_BROADCAST",
        )?;
        // Room for a burst of clients (200 DISCOVERs at once after a switch reboots),
        // past rmem_max when pathman may (CAP_NET_ADMIN); else the kernel's default.
        let room = crate::caps::DHCP_SERVER_RCVBUF as libc::c_int;
        if setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &room,
            "SO_RCVBUFFORCE",
        )
        .is_err()
        {
            let _ = setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &room, "SO_RCVBUF");
        }
        bind_in(raw, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67))?;
        let sock = Async::new(UdpSocket::from(fd)).map_err(sys("Async::new"))?;
        Ok(ServerSock { sock })
    }

    /// Receives one datagram and its sender; a datagram larger than `buf` is reported cut.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<(Datagram, SocketAddrV4), Error> {
        self.sock
            .read_with(|s| {
                let (d, from) = recv_from_trunc(s.as_raw_fd(), buf)?;
                Ok((d, from))
            })
            .await
            .map_err(sys("recvfrom(UDP)"))
    }

    /// Sends one datagram.
    pub async fn send(&self, payload: &[u8], dst: SocketAddrV4) -> Result<(), Error> {
        let n = self
            .sock
            .send_to(payload, dst)
            .await
            .map_err(sys("sendto(UDP)"))?;
        if n != payload.len() {
            return Err(Error::ShortSend(n));
        }
        Ok(())
    }
}

/// `recvfrom` with `MSG_TRUNC`: the real length, and the IPv4 sender.
fn recv_from_trunc(fd: RawFd, buf: &mut [u8]) -> io::Result<(Datagram, SocketAddrV4)> {
    // SAFETY: sockaddr_in is plain data; all-zero is valid.
    let mut sa: libc::sockaddr_in = unsafe { zeroed() };
    let mut len = size_of_val(&sa) as libc::socklen_t;
    // SAFETY: `buf` and `sa` are live and writable for the sizes passed.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
            (&mut sa as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let from = SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
        u16::from_be(sa.sin_port),
    );
    Ok((Datagram::new(n as usize, buf.len(), 0), from))
}
