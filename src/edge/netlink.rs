//! What every netlink edge (rtnetlink, MPTCP generic netlink, nftables)
//! shares: reading one datagram whole and splitting it into messages.

use std::io;

use netlink_packet_core::NetlinkBuffer;
use netlink_sys::Socket;
use smol::Async;

/// Reads one datagram into `rx`. MSG_TRUNC makes the kernel report the
/// real length, so a datagram larger than the buffer is an error, not a
/// silently cut message. `who` names the edge in the log line.
pub async fn recv_datagram(who: &str, sock: &Async<Socket>, rx: &mut [u8]) -> io::Result<usize> {
    let n = sock
        .read_with(|s| {
            let mut buf: &mut [u8] = rx;
            s.recv(&mut buf, libc::MSG_TRUNC)
        })
        .await?;
    if n > rx.len() {
        log::warn!(
            "{who}: {n}-byte datagram exceeds the {}-byte buffer",
            rx.len()
        );
        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
    }
    Ok(n)
}

/// Splits one received datagram into its netlink messages. Stops at the
/// first header whose length does not fit: nothing after it can be found.
pub fn messages<'a>(
    who: &'a str,
    datagram: &'a [u8],
) -> impl Iterator<Item = NetlinkBuffer<&'a [u8]>> + 'a {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match NetlinkBuffer::new_checked(rest) {
            Ok(buf) => {
                let len = buf.length() as usize;
                let (msg, tail) = rest.split_at(len);
                rest = tail.get(len.next_multiple_of(4) - len..).unwrap_or(&[]);
                Some(NetlinkBuffer::new(msg))
            }
            Err(e) => {
                log::debug!("{who}: garbled netlink header, dropping rest of datagram: {e}");
                None
            }
        }
    })
}

/// A failed netlink operation, for every netlink edge: what was attempted,
/// the kernel's errno and, when the kernel explained it (extended ack), why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    /// The edge: `rtnl`, `mptcp`, `nft`.
    pub who: &'static str,
    /// The operation, e.g. `"add route"`, `"dump endpoints"`.
    pub op: &'static str,
    /// Positive errno (`libc::EEXIST`, …).
    pub errno: i32,
    /// The kernel's extended-ack message, if it sent one.
    pub detail: Option<String>,
}

impl NlError {
    /// An error for `op` of `who` with `errno`.
    pub fn new(who: &'static str, op: &'static str, errno: i32) -> NlError {
        NlError {
            who,
            op,
            errno,
            detail: None,
        }
    }

    /// An error from a socket call.
    pub fn io(who: &'static str, op: &'static str, e: &io::Error) -> NlError {
        NlError::new(who, op, e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl std::fmt::Display for NlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} failed: {}",
            self.who,
            self.op,
            io::Error::from_raw_os_error(self.errno)
        )?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for NlError {}

/// How [`NlSocket::exchange`] collects the replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collect {
    /// Wait until every request has its ack, error or NLMSG_DONE.
    Every,
    /// Read only what is queued when the send returns: nfnetlink batches
    /// are processed inside `sendmsg`, and after a refusal the rest of the
    /// batch is never answered.
    Queued,
}

/// What the kernel answered to one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// `Some(0)` success, `Some(errno)` refused, `None` not answered.
    pub errno: Option<i32>,
    /// The extended-ack message, if any.
    pub detail: Option<String>,
}

/// `NLMSGERR_ATTR_MSG`: the extended-ack error string.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// The extended-ack message of an NLMSG_ERROR reply. The attributes
/// (present with `NLM_F_ACK_TLVS`) follow the errno and the echoed
/// request: only its header when `NLM_F_CAPPED` says so, else all of it.
pub fn ext_ack_msg(msg: &NetlinkBuffer<&[u8]>) -> Option<String> {
    use netlink_packet_core::{ErrorBuffer, NlasIterator, NLM_F_ACK_TLVS, NLM_F_CAPPED};
    if msg.flags() & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let echoed = ErrorBuffer::new_checked(msg.payload()).ok()?.payload();
    let req_len = if msg.flags() & NLM_F_CAPPED != 0 {
        std::mem::size_of::<libc::nlmsghdr>()
    } else {
        NetlinkBuffer::new_checked(echoed).ok()?.length() as usize
    };
    let tlvs = echoed.get(req_len.next_multiple_of(4)..)?;
    NlasIterator::new(tlvs)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let s = nla.value().split(|b| *b == 0).next().unwrap_or_default();
            String::from_utf8_lossy(s).into_owned()
        })
}

/// A netlink socket with the one request/ack helper every netlink edge uses.
pub struct NlSocket {
    who: &'static str,
    sock: Async<Socket>,
    seq: u32,
    rx: Vec<u8>,
}

impl NlSocket {
    /// Opens a socket of `protocol` (NETLINK_ROUTE, _GENERIC, _NETFILTER) in
    /// the network namespace of the calling thread, with acks that carry
    /// only the request header and, when `ext_ack`, the kernel's reasons.
    pub fn open(
        who: &'static str,
        protocol: isize,
        rx_len: usize,
        ext_ack: bool,
    ) -> Result<NlSocket, NlError> {
        const OP: &str = "open socket";
        let mut sock = Socket::new(protocol).map_err(|e| NlError::io(who, OP, &e))?;
        sock.bind_auto().map_err(|e| NlError::io(who, OP, &e))?;
        if let Err(e) = sock.set_cap_ack(true) {
            log::debug!("{who}: NETLINK_CAP_ACK unavailable: {e}");
        }
        if ext_ack {
            if let Err(e) = sock.set_ext_ack(true) {
                log::debug!("{who}: NETLINK_EXT_ACK unavailable: {e}");
            }
        }
        Ok(NlSocket {
            who,
            sock: Async::new(sock).map_err(|e| NlError::io(who, OP, &e))?,
            seq: 1,
            rx: vec![0; rx_len],
        })
    }

    /// The socket, for options its edge sets.
    pub fn raw(&self) -> &Socket {
        self.sock.get_ref()
    }

    /// Reserves `n` consecutive sequence numbers and returns the first.
    pub fn take_seq(&mut self, n: usize) -> u32 {
        let first = self.seq;
        self.seq = self.seq.wrapping_add(n as u32);
        first
    }

    /// The one request/ack helper: sends `tx` (requests with sequence
    /// numbers `first..first + answers.len()`, already encoded) in one
    /// datagram and collects the replies: `answers[i]` gets request `i`'s
    /// ack, error or NLMSG_DONE; data messages go to `on_data`. Returns
    /// whether a dump was interrupted (NLM_F_DUMP_INTR). Replies to other
    /// sequence numbers (left over from a cancelled call) are skipped.
    pub async fn exchange(
        &mut self,
        op: &'static str,
        tx: &[u8],
        first: u32,
        answers: &mut [Answer],
        collect: Collect,
        on_data: &mut dyn FnMut(NetlinkBuffer<&[u8]>),
    ) -> Result<bool, NlError> {
        use netlink_packet_core::{
            DoneBuffer, ErrorBuffer, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR,
        };
        let who = self.who;
        let NlSocket { sock, rx, .. } = self;
        let sent = sock
            .write_with(|s| s.send(tx, 0))
            .await
            .map_err(|e| NlError::io(who, op, &e))?;
        if sent != tx.len() {
            return Err(NlError::new(who, op, libc::EMSGSIZE));
        }
        let mut pending = answers.len();
        let mut interrupted = false;
        while pending > 0 {
            let n = match collect {
                Collect::Every => recv_datagram(who, sock, rx)
                    .await
                    .map_err(|e| NlError::io(who, op, &e))?,
                Collect::Queued => match sock.get_ref().recv(&mut &mut rx[..], libc::MSG_TRUNC) {
                    Ok(n) if n > rx.len() => return Err(NlError::new(who, op, libc::EMSGSIZE)),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(NlError::io(who, op, &e)),
                },
            };
            for msg in messages(who, &rx[..n]) {
                let idx = msg.sequence_number().wrapping_sub(first) as usize;
                let Some(slot) = answers.get_mut(idx) else {
                    log::debug!(
                        "{who}: skipping reply to stale seq {}",
                        msg.sequence_number()
                    );
                    continue;
                };
                interrupted |= msg.flags() & NLM_F_DUMP_INTR != 0;
                let (errno, detail) = match msg.message_type() {
                    NLMSG_ERROR => match ErrorBuffer::new_checked(msg.payload()) {
                        Ok(e) => (e.code().map_or(0, |c| -c.get()), ext_ack_msg(&msg)),
                        Err(_) => (libc::EIO, None),
                    },
                    // Old kernels may send a DONE without the error code.
                    NLMSG_DONE => (
                        DoneBuffer::new_checked(msg.payload()).map_or(0, |d| -d.code()),
                        None,
                    ),
                    _ => {
                        on_data(msg);
                        continue;
                    }
                };
                if slot.errno.is_none() {
                    slot.errno = Some(errno);
                    slot.detail = detail;
                    pending -= 1;
                }
            }
        }
        Ok(interrupted)
    }
}
