//! The nftables edge: pathman's own table `inet pathman`, replaced as a
//! whole by one nfnetlink batch (SPEC §5, Marking). What goes in it is
//! decided by the core ([`Ruleset`]); [`lower`] groups it into maps and
//! rules, [`encode`] builds the batch, this module sends it and reads the
//! acks.

pub mod encode;
mod lower;
#[cfg(test)]
mod tests;

use crate::edge::netlink::{messages, recv_datagram};
use std::fmt;
use std::io;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NlasIterator, NLMSG_ERROR, NLM_F_ACK_TLVS, NLM_F_CAPPED,
};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};
use smol::Async;

pub use crate::core::firewall::Ruleset;
use encode::Batch;

/// Receive buffer for one reply datagram: acks are tiny, an error carries
/// the request header and an extended-ack message.
const RX_BUF_LEN: usize = 32 * 1024;
/// Socket buffer the kernel charges per queued ack (an skb's truesize),
/// generously: the receive buffer must hold one per batch message.
const ACK_TRUESIZE: usize = 1024;
/// `NLMSGERR_ATTR_MSG`: the extended-ack error string.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Socket buffer size pathman asks for at least once it grows one: a few
/// large steps instead of one per slightly larger batch.
const MIN_SOCK_BUF: usize = 256 * 1024;

/// A failed nftables operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NftError {
    /// The ruleset was refused before anything was sent; says which rule
    /// and why.
    Invalid(String),
    /// The kernel refused the batch (nothing of it was applied) or the
    /// socket failed.
    Kernel {
        /// What failed, e.g. `"add map elements"`, `"send batch"`.
        op: &'static str,
        /// Positive errno.
        errno: i32,
    },
}

impl NftError {
    fn io(op: &'static str, e: &io::Error) -> NftError {
        NftError::Kernel {
            op,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

impl fmt::Display for NftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NftError::Invalid(why) => write!(f, "nftables ruleset refused: {why}"),
            NftError::Kernel { op, errno } => write!(
                f,
                "nftables {op} failed: {}",
                io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

impl std::error::Error for NftError {}

/// An nfnetlink socket in the network namespace the calling thread was in
/// at [`open`]. One batch at a time (`&mut self`).
pub struct Nft {
    sock: Async<Socket>,
    seq: u32,
    rx: Vec<u8>,
    /// What the socket's send buffer holds, as an `SO_SNDBUF` value.
    sndbuf: usize,
    /// What the socket's receive buffer holds, as an `SO_RCVBUF` value.
    rcvbuf: usize,
}

/// Opens the nfnetlink socket.
pub fn open() -> Result<Nft, NftError> {
    const OP: &str = "open";
    let mut sock = Socket::new(NETLINK_NETFILTER).map_err(|e| NftError::io(OP, &e))?;
    sock.bind_auto().map_err(|e| NftError::io(OP, &e))?;
    // Acks then carry only the request header, not the whole request.
    if let Err(e) = sock.set_cap_ack(true) {
        log::debug!("nft: NETLINK_CAP_ACK unavailable: {e}");
    }
    // The kernel explains most refusals in an extended ack; we log it.
    if let Err(e) = sock.set_ext_ack(true) {
        log::debug!("nft: NETLINK_EXT_ACK unavailable: {e}");
    }
    let fd = sock.as_raw_fd();
    // The kernel reports twice what was set (its bookkeeping overhead):
    // halved, it compares with what we would set.
    let current = |opt| getsockopt_int(fd, opt).map_or(0, |v| v / 2);
    Ok(Nft {
        sndbuf: current(libc::SO_SNDBUF),
        rcvbuf: current(libc::SO_RCVBUF),
        sock: Async::new(sock).map_err(|e| NftError::io(OP, &e))?,
        seq: 1,
        rx: vec![0; RX_BUF_LEN],
    })
}

impl Nft {
    /// Replaces table `inet pathman` with `rs`, atomically: after an error
    /// the previous ruleset is still in place, untouched. `rs` is validated
    /// first ([`NftError::Invalid`], nothing sent).
    pub async fn replace(&mut self, rs: &Ruleset) -> Result<(), NftError> {
        rs.validate().map_err(NftError::Invalid)?;
        let batch = encode::replace_batch(rs, self.seq);
        self.transact(batch).await
    }

    /// Deletes table `inet pathman` and everything in it; no table is fine.
    pub async fn remove(&mut self) -> Result<(), NftError> {
        let batch = encode::remove_batch(self.seq);
        match self.transact(batch).await {
            Err(NftError::Kernel {
                errno: libc::ENOENT,
                ..
            }) => Ok(()),
            r => r,
        }
    }

    /// Does pathman's table exist? A plain read, far cheaper than a
    /// transaction, so a clean start does not pay for removing nothing.
    pub async fn exists(&mut self) -> Result<bool, NftError> {
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let req = encode::get_table(seq);
        self.sock
            .write_with(|s| s.send(&req, 0))
            .await
            .map_err(|e| NftError::io("get table", &e))?;
        let mut found = false;
        loop {
            let n = recv_datagram("nft", &self.sock, &mut self.rx)
                .await
                .map_err(|e| NftError::io("get table", &e))?;
            for msg in messages("nft", &self.rx[..n]) {
                if msg.sequence_number() != seq {
                    continue;
                }
                if msg.message_type() != NLMSG_ERROR {
                    found = true;
                    continue;
                }
                return match ErrorBuffer::new_checked(msg.payload()) {
                    Ok(e) => match e.code().map_or(0, |c| -c.get()) {
                        0 => Ok(found),
                        libc::ENOENT => Ok(false),
                        errno => Err(NftError::Kernel {
                            op: "get table",
                            errno,
                        }),
                    },
                    Err(_) => Err(NftError::Kernel {
                        op: "get table",
                        errno: libc::EIO,
                    }),
                };
            }
        }
    }

    /// Sends one batch in one `send` and collects the kernel's answer to
    /// each message. The kernel processes a batch inside `sendmsg` and
    /// queues every reply before it returns, so the replies are read without
    /// waiting: what is not there when the queue runs dry never comes.
    async fn transact(&mut self, batch: Batch) -> Result<(), NftError> {
        let first = batch.first_seq;
        let end = batch.end_seq();
        self.seq = end.wrapping_add(1);
        self.size_buffers(batch.buf.len(), batch.ops.len());

        let sent = self
            .sock
            .write_with(|s| s.send(&batch.buf, 0))
            .await
            .map_err(|e| NftError::io("send batch", &e))?;
        if sent != batch.buf.len() {
            return Err(NftError::Kernel {
                op: "send batch",
                errno: libc::EMSGSIZE,
            });
        }

        let mut answered = 0usize;
        // (seq, errno) of the earliest refused message: later errors are
        // usually consequences of it.
        let mut first_err: Option<(u32, i32)> = None;
        let Nft { sock, rx, .. } = self;
        loop {
            let n = match sock.get_ref().recv(&mut &mut rx[..], libc::MSG_TRUNC) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(NftError::io("read acks", &e)),
            };
            if n > rx.len() {
                return Err(NftError::Kernel {
                    op: "read acks",
                    errno: libc::EMSGSIZE,
                });
            }
            for msg in messages("nft", &rx[..n]) {
                let seq = msg.sequence_number();
                // Content messages are first+1 ..= end-1; first is BatchBegin,
                // on which the kernel reports batch-wide failures.
                if seq.wrapping_sub(first) >= end.wrapping_sub(first) {
                    log::debug!("nft: skipping reply to stale seq {seq}");
                    continue;
                }
                if msg.message_type() != NLMSG_ERROR {
                    continue;
                }
                let (errno, why) = match ErrorBuffer::new_checked(msg.payload()) {
                    Ok(e) => (e.code().map_or(0, |c| -c.get()), ext_ack_msg(&msg)),
                    Err(_) => (libc::EIO, None),
                };
                if seq != first {
                    answered += 1;
                }
                if errno != 0 {
                    let op = op_of(&batch, seq);
                    log::warn!(
                        "nft: {op}: {}{}",
                        io::Error::from_raw_os_error(errno),
                        why.map(|w| format!(" ({w})")).unwrap_or_default()
                    );
                    let key = seq.wrapping_sub(first);
                    if first_err.is_none_or(|(s, _)| key < s.wrapping_sub(first)) {
                        first_err = Some((seq, errno));
                    }
                }
            }
        }
        if let Some((seq, errno)) = first_err {
            return Err(NftError::Kernel {
                op: op_of(&batch, seq),
                errno,
            });
        }
        if answered != batch.ops.len() {
            log::warn!(
                "nft: {answered} of {} batch messages answered",
                batch.ops.len()
            );
            return Err(NftError::Kernel {
                op: "read acks",
                errno: libc::EPROTO,
            });
        }
        Ok(())
    }

    /// Grows the socket buffers so the batch fits in one send and every
    /// ack fits in the receive queue. Each buffer is sized on its own and
    /// only ever grows: a batch of few large messages must not shrink the
    /// receive buffer a later batch of many small ones needs. The FORCE
    /// options need CAP_NET_ADMIN, which changing nftables needs anyway;
    /// without it the plain options still give what net.core.[rw]mem_max
    /// allow.
    fn size_buffers(&mut self, tx_len: usize, msgs: usize) {
        let fd = self.sock.get_ref().as_raw_fd();
        let tx_want = tx_len.saturating_add(4096);
        let rx_want = msgs.saturating_add(2).saturating_mul(ACK_TRUESIZE);
        for (force, plain, want, have) in [
            (
                libc::SO_SNDBUFFORCE,
                libc::SO_SNDBUF,
                tx_want,
                &mut self.sndbuf,
            ),
            (
                libc::SO_RCVBUFFORCE,
                libc::SO_RCVBUF,
                rx_want,
                &mut self.rcvbuf,
            ),
        ] {
            if want <= *have {
                continue;
            }
            let val = want.max(MIN_SOCK_BUF).min(i32::MAX as usize / 2);
            let c_val = val as libc::c_int;
            if setsockopt_int(fd, force, c_val).is_err() {
                if let Err(e) = setsockopt_int(fd, plain, c_val) {
                    log::debug!("nft: cannot grow socket buffer to {val}: {e}");
                    continue;
                }
            }
            *have = val;
        }
    }
}

fn setsockopt_int(fd: libc::c_int, opt: libc::c_int, val: libc::c_int) -> io::Result<()> {
    // SAFETY: fd is our open socket; the option value is a plain c_int that
    // outlives the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(fd: libc::c_int, opt: libc::c_int) -> io::Result<usize> {
    let mut val: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: fd is our open socket; val and len are live locals of the
    // sizes the kernel is told.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut val as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(usize::try_from(val).unwrap_or(0))
    } else {
        Err(io::Error::last_os_error())
    }
}

fn op_of(batch: &Batch, seq: u32) -> &'static str {
    let i = seq.wrapping_sub(batch.first_seq).wrapping_sub(1) as usize;
    batch.ops.get(i).copied().unwrap_or("commit batch")
}

/// The extended-ack message of an NLMSG_ERROR reply. The attributes
/// (present with `NLM_F_ACK_TLVS`) follow the errno and the echoed
/// request: only its header when `NLM_F_CAPPED` says so, else all of it.
fn ext_ack_msg(msg: &NetlinkBuffer<&[u8]>) -> Option<String> {
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
