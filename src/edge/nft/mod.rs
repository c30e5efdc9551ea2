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

use netlink_packet_core::{ErrorBuffer, NLMSG_ERROR};
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
    /// Largest batch the socket buffers were sized for.
    sized_for: usize,
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
    Ok(Nft {
        sock: Async::new(sock).map_err(|e| NftError::io(OP, &e))?,
        seq: 1,
        rx: vec![0; RX_BUF_LEN],
        sized_for: 0,
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
                    Ok(e) => (e.code().map_or(0, |c| -c.get()), ext_ack_msg(msg.payload())),
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
    /// ack fits in the receive queue. The FORCE options need CAP_NET_ADMIN,
    /// which changing nftables needs anyway; without it the plain options
    /// still give what net.core.[rw]mem_max allow.
    fn size_buffers(&mut self, tx_len: usize, msgs: usize) {
        let want = tx_len.max((msgs + 2) * ACK_TRUESIZE);
        if want <= self.sized_for {
            return;
        }
        let fd = self.sock.get_ref().as_raw_fd();
        let tx = tx_len.saturating_add(4096).min(i32::MAX as usize) as libc::c_int;
        let rx = ((msgs + 2) * ACK_TRUESIZE).min(i32::MAX as usize) as libc::c_int;
        for (force, plain, val) in [
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, tx),
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, rx),
        ] {
            if setsockopt_int(fd, force, val).is_err() {
                if let Err(e) = setsockopt_int(fd, plain, val) {
                    log::debug!("nft: cannot grow socket buffer to {val}: {e}");
                }
            }
        }
        self.sized_for = want;
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

fn op_of(batch: &Batch, seq: u32) -> &'static str {
    let i = seq.wrapping_sub(batch.first_seq).wrapping_sub(1) as usize;
    batch.ops.get(i).copied().unwrap_or("commit batch")
}

/// The extended-ack message of an NLMSG_ERROR payload: after the errno
/// and the echoed request header (only the header: NETLINK_CAP_ACK).
fn ext_ack_msg(payload: &[u8]) -> Option<String> {
    let mut rest = payload.get(4 + 16..)?;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        let value = rest.get(4..len)?;
        if kind == NLMSGERR_ATTR_MSG {
            let s = value.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(s).into_owned());
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    None
}
