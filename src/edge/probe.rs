//! The sockets of one service's online check ([`crate::online::Checker`]): a raw ICMP socket
//! for the echo probe, a UDP socket for DNS and one TCP connection per HTTP check. Every one
//! is bound to the interface (`SO_BINDTODEVICE`) and to the service's IPv4 source address,
//! so the kernel's per-uplink source rules pick that uplink's table and the probe measures
//! that uplink, not the default route.
//!
//! The HTTP exchange is bounded: connect within the checker's
//! [`Timing::http_connect_timeout`] (default [`crate::caps::ONLINE_HTTP_CONNECT_TIMEOUT_MS`]), all within
//! [`Timing::http_timeout`] (default [`crate::caps::ONLINE_HTTP_TIMEOUT_MS`]), at most [`HTTP_MAX_HEAD`] bytes read (the body never
//! is). A server that hangs, floods or talks garbage costs at most that and is reported to
//! the checker, which decides; the driver loop never blocks on it (the exchange progresses
//! inside [`Transport::recv`], which is cancel-safe: its state lives here, not in the
//! future). No protocol logic here.

use std::io::{self, Read, Write};
use std::mem::size_of_val;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use log::{debug, warn};
use smol::future::FutureExt;
use smol::Async;

use crate::caps::{DNS_MAX_MESSAGE, HTTP_MAX_HEAD, HTTP_MAX_REQUEST, ICMP_RX_BUFFER};
use crate::edge::packet::{bind_in, check, recv_trunc, send_to, setsockopt, sockaddr_in, Error};
use crate::online::{Checker, HttpError, Input, Output, Timing};
use crate::task::Transport;
use crate::wire::http;

/// Wait before retrying a socket that failed to open (address not configured yet).
const SOCKET_RETRY: Duration = Duration::from_secs(2);
/// `ICMP_FILTER` of `<linux/icmp.h>` (not in libc): a bit set per ICMP type to drop.
const ICMP_FILTER: libc::c_int = 1;
/// ICMP type of an echo reply.
const ICMP_ECHOREPLY: u32 = 0;

/// An AF_INET socket of `ty`/`proto`, nonblocking, bound to `ifname` and `source:0`.
fn bound_socket(ty: i32, proto: i32, ifname: &str, source: Ipv4Addr) -> Result<OwnedFd, Error> {
    // SAFETY: plain syscall; the fd is owned right after.
    let fd = check("socket(AF_INET)", unsafe {
        libc::socket(
            libc::AF_INET,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto,
        )
    })?;
    // SAFETY: `fd` is fresh and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut name = [0u8; libc::IFNAMSIZ];
    if ifname.is_empty() || ifname.len() >= name.len() {
        return Err(Error::BadInterface);
    }
    name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    setsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_BINDTODEVICE,
        &name,
        "SO_BINDTODEVICE",
    )?;
    bind_in(fd.as_raw_fd(), SocketAddrV4::new(source, 0))?;
    Ok(fd)
}

fn http_error(e: &io::Error) -> HttpError {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => HttpError::Refused,
        Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EHOSTDOWN) => {
            HttpError::Unreachable
        }
        Some(libc::ETIMEDOUT) => HttpError::ConnectTimeout,
        _ => HttpError::Io,
    }
}

/// One HTTP check in progress.
struct HttpConn {
    id: u32,
    stream: Async<TcpStream>,
    connected: bool,
    connect_by: Instant,
    done_by: Instant,
    request: heapless::Vec<u8, HTTP_MAX_REQUEST>,
    written: usize,
    buf: Box<[u8; HTTP_MAX_HEAD]>,
    len: usize,
}

impl HttpConn {
    /// Starts a nonblocking connect from `source` on `ifname` to `to`.
    fn start(
        id: u32,
        ifname: &str,
        source: Ipv4Addr,
        to: SocketAddrV4,
        request: heapless::Vec<u8, HTTP_MAX_REQUEST>,
        timing: &Timing,
    ) -> Result<HttpConn, HttpError> {
        let fd = bound_socket(libc::SOCK_STREAM, 0, ifname, source).map_err(|e| {
            warn!("{ifname}: online check TCP socket: {e}");
            HttpError::Socket
        })?;
        let sa = sockaddr_in(to);
        // SAFETY: `sa` is a valid sockaddr_in of the size passed.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in).cast(),
                size_of_val(&sa) as libc::socklen_t,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(http_error(&e));
            }
        }
        let stream = Async::new(TcpStream::from(fd)).map_err(|_| HttpError::Socket)?;
        let now = Instant::now();
        Ok(HttpConn {
            id,
            stream,
            connected: false,
            connect_by: now + timing.http_connect_timeout,
            done_by: now + timing.http_timeout,
            request,
            written: 0,
            buf: Box::new([0; HTTP_MAX_HEAD]),
            len: 0,
        })
    }

    fn result(&self) -> heapless::Vec<u8, HTTP_MAX_HEAD> {
        heapless::Vec::from_slice(&self.buf[..self.len]).unwrap_or_default()
    }

    /// Connect, write, read until the head is complete, the buffer full or the server
    /// closed. Each step's progress is stored before the next await.
    async fn run(&mut self) -> Result<heapless::Vec<u8, HTTP_MAX_HEAD>, HttpError> {
        if !self.connected {
            self.stream.writable().await.map_err(|e| http_error(&e))?;
            if let Some(e) = self
                .stream
                .get_ref()
                .take_error()
                .map_err(|e| http_error(&e))?
            {
                return Err(http_error(&e));
            }
            self.connected = true;
        }
        while self.written < self.request.len() {
            let HttpConn {
                stream,
                request,
                written,
                ..
            } = self;
            let n = stream
                .write_with(|s| (&*s).write(&request[*written..]))
                .await
                .map_err(|e| http_error(&e))?;
            if n == 0 {
                return Err(HttpError::Io);
            }
            self.written += n;
        }
        loop {
            match http::head_len(&self.buf[..self.len]) {
                Ok(None) if self.len < self.buf.len() => {}
                _ => return Ok(self.result()),
            }
            let HttpConn {
                stream, buf, len, ..
            } = self;
            let n = stream
                .read_with(|s| (&*s).read(&mut buf[*len..]))
                .await
                .map_err(|e| http_error(&e))?;
            if n == 0 {
                // Closed by the server: the checker judges what came.
                return Ok(self.result());
            }
            self.len += n;
        }
    }

    /// [`HttpConn::run`] within the connect and total bounds.
    async fn progress(&mut self) -> Result<heapless::Vec<u8, HTTP_MAX_HEAD>, HttpError> {
        let (deadline, err) = if self.connected {
            (self.done_by, HttpError::Timeout)
        } else if self.connect_by < self.done_by {
            (self.connect_by, HttpError::ConnectTimeout)
        } else {
            (self.done_by, HttpError::ConnectTimeout)
        };
        self.run()
            .or(async move {
                smol::Timer::at(deadline).await;
                Err(err)
            })
            .await
    }
}

/// The online check's sockets on one interface and source address.
pub struct ProbeSockets {
    ifname: String,
    ifindex: u32,
    source: Ipv4Addr,
    icmp: Option<Async<OwnedFd>>,
    udp: Option<Async<UdpSocket>>,
    http: Option<HttpConn>,
    /// An HTTP exchange that failed before it started, reported by the next `recv`.
    http_failed: Option<(u32, HttpError)>,
    retry_at: Option<Instant>,
    icmp_buf: [u8; ICMP_RX_BUFFER],
    udp_buf: Box<[u8; DNS_MAX_MESSAGE]>,
}

impl ProbeSockets {
    /// Sockets on `ifname` (index `ifindex`) from `source`, opened as the checker needs them.
    pub fn new(ifname: &str, ifindex: u32, source: Ipv4Addr) -> ProbeSockets {
        ProbeSockets {
            ifname: ifname.to_owned(),
            ifindex,
            source,
            icmp: None,
            udp: None,
            http: None,
            http_failed: None,
            retry_at: None,
            icmp_buf: [0; ICMP_RX_BUFFER],
            udp_buf: Box::new([0; DNS_MAX_MESSAGE]),
        }
    }

    /// The interface index given at construction.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    fn open_icmp(&mut self) -> Result<(), Error> {
        if self.icmp.is_some() {
            return Ok(());
        }
        let fd = bound_socket(
            libc::SOCK_RAW,
            libc::IPPROTO_ICMP,
            &self.ifname,
            self.source,
        )?;
        // Only echo replies reach us, not every ICMP message of the host.
        let filter: u32 = !(1u32 << ICMP_ECHOREPLY);
        setsockopt(
            fd.as_raw_fd(),
            libc::SOL_RAW,
            ICMP_FILTER,
            &filter,
            "ICMP_FILTER",
        )?;
        self.icmp = Some(Async::new(fd).map_err(|err| Error::Sys {
            op: "Async::new",
            err,
        })?);
        Ok(())
    }

    fn open_udp(&mut self) -> Result<(), Error> {
        if self.udp.is_some() {
            return Ok(());
        }
        let fd = bound_socket(libc::SOCK_DGRAM, 0, &self.ifname, self.source)?;
        self.udp = Some(Async::new(UdpSocket::from(fd)).map_err(|err| Error::Sys {
            op: "Async::new",
            err,
        })?);
        Ok(())
    }
}

impl Transport<Checker> for ProbeSockets {
    async fn recv(&mut self) -> Input {
        if let Some((id, e)) = self.http_failed.take() {
            return Input::Http { id, result: Err(e) };
        }
        #[allow(clippy::large_enum_variant)]
        enum Got {
            Icmp(io::Result<crate::edge::packet::Datagram>),
            Udp(io::Result<(usize, SocketAddr)>),
            Http(Result<heapless::Vec<u8, HTTP_MAX_HEAD>, HttpError>),
        }
        let ProbeSockets {
            icmp,
            udp,
            http,
            icmp_buf,
            udp_buf,
            ..
        } = self;
        let icmp_f = async {
            match icmp {
                Some(s) => Got::Icmp(
                    s.read_with(|fd| recv_trunc(fd.as_raw_fd(), &mut icmp_buf[..]))
                        .await,
                ),
                None => std::future::pending().await,
            }
        };
        let udp_f = async {
            match udp {
                Some(s) => Got::Udp(s.recv_from(&mut udp_buf[..]).await),
                None => std::future::pending().await,
            }
        };
        let http_f = async {
            match http {
                Some(c) => Got::Http(c.progress().await),
                None => std::future::pending().await,
            }
        };
        match icmp_f.or(udp_f).or(http_f).await {
            Got::Icmp(Ok(d)) if d.truncated => Input::Nothing,
            Got::Icmp(Ok(d)) => {
                Input::Icmp(heapless::Vec::from_slice(&self.icmp_buf[..d.len]).unwrap_or_default())
            }
            Got::Udp(Ok((n, from))) => Input::Dns {
                from,
                bytes: heapless::Vec::from_slice(&self.udp_buf[..n.min(DNS_MAX_MESSAGE)])
                    .unwrap_or_default(),
            },
            Got::Http(result) => {
                let id = self.http.take().map_or(0, |c| c.id);
                if let Err(e) = &result {
                    debug!("{}: HTTP check {id}: {e:?}", self.ifname);
                }
                Input::Http { id, result }
            }
            Got::Icmp(Err(e)) => {
                warn!("{}: ICMP socket: {e}", self.ifname);
                self.icmp = None;
                Input::Nothing
            }
            Got::Udp(Err(e)) => {
                // ICMP port unreachable from a DNS server lands here: keep the socket.
                debug!("{}: DNS socket: {e}", self.ifname);
                Input::Nothing
            }
        }
    }

    async fn send(&mut self, machine: &Checker, out: Output) {
        match out {
            Output::Ping { to, packet } => {
                if let Err(e) = self.open_icmp() {
                    warn!("{}: ICMP socket: {e}", self.ifname);
                    return;
                }
                if let Some(s) = &self.icmp {
                    let dst = SocketAddrV4::new(to, 0);
                    if let Err(e) = s
                        .write_with(|fd| send_to(fd.as_raw_fd(), &packet, &sockaddr_in(dst)))
                        .await
                    {
                        // Unreachable network etc.: the checker sees a lost probe.
                        debug!("{}: ping {to}: {e}", self.ifname);
                    }
                }
            }
            Output::Dns(q) => {
                let SocketAddr::V4(to) = q.to else {
                    debug!(
                        "{}: IPv6 DNS server {} skipped (IPv4 check)",
                        self.ifname, q.to
                    );
                    return;
                };
                if let Err(e) = self.open_udp() {
                    warn!("{}: DNS socket: {e}", self.ifname);
                    return;
                }
                if let Some(s) = &self.udp {
                    if let Err(e) = s.send_to(q.bytes(), to).await {
                        debug!("{}: DNS to {to}: {e}", self.ifname);
                    }
                }
            }
            Output::Http { id, to, request } => {
                self.http = None;
                let to = match to {
                    SocketAddr::V4(a) => a,
                    SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
                        Some(v4) => SocketAddrV4::new(v4, a.port()),
                        None => {
                            self.http_failed = Some((id, HttpError::Unreachable));
                            return;
                        }
                    },
                };
                let timing = machine.timing();
                match HttpConn::start(id, &self.ifname, self.source, to, request, timing) {
                    Ok(c) => self.http = Some(c),
                    Err(e) => self.http_failed = Some((id, e)),
                }
            }
        }
    }

    fn prepare(&mut self, machine: &Checker, now: Instant) -> Option<Instant> {
        let waiting = machine.http_waiting();
        if self.http.as_ref().is_some_and(|c| Some(c.id) != waiting) {
            // The checker gave up on it (its own timeout): close.
            self.http = None;
        }
        if self.http_failed.is_some_and(|(id, _)| Some(id) != waiting) {
            self.http_failed = None;
        }
        if !machine.resolving() {
            self.udp = None;
        }
        if let Some(t) = self.retry_at.filter(|t| now < *t) {
            return Some(t);
        }
        self.retry_at = None;
        let mut ok = true;
        if !machine.targets().is_empty() {
            if let Err(e) = self.open_icmp() {
                warn!("{}: ICMP socket: {e}", self.ifname);
                ok = false;
            }
        }
        if machine.resolving() {
            if let Err(e) = self.open_udp() {
                warn!("{}: DNS socket: {e}", self.ifname);
                ok = false;
            }
        }
        if !ok {
            self.retry_at = Some(now + SOCKET_RETRY);
        }
        self.retry_at
    }
}

/// The source address of `ifname`'s first IPv4 address, if any (for callers that know
/// only the interface).
pub fn first_ipv4(ifname: &str) -> Option<Ipv4Addr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        if ifa.interface_name != ifname {
            return None;
        }
        Some(ifa.address.as_ref()?.as_sockaddr_in()?.ip())
    })
}
