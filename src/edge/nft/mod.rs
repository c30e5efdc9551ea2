//! The nftables edge: pathman's own table `inet pathman`, replaced as a
//! whole by one nfnetlink batch (SPEC §5, Marking). What goes in it is
//! decided by the core ([`Ruleset`]); [`lower`] groups it into maps and
//! rules, [`encode`] builds the batch, this module sends it and reads the
//! acks.

pub mod encode;
mod lower;
#[cfg(test)]
mod tests;

use crate::edge::netlink::{Answer, Collect, NlError, NlSocket};
use std::fmt;
use std::io;
use std::os::fd::AsRawFd;

use netlink_sys::protocols::NETLINK_NETFILTER;

pub use crate::core::firewall::Ruleset;
use encode::Batch;

/// Receive buffer for one reply datagram: acks are tiny, an error carries
/// the request header and an extended-ack message.
const RX_BUF_LEN: usize = 32 * 1024;
/// Socket buffer the kernel charges per queued ack (an skb's truesize),
/// generously: the receive buffer must hold one per batch message.
const ACK_TRUESIZE: usize = 1024;
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
    Kernel(NlError),
}

fn err(op: &'static str, errno: i32) -> NftError {
    NftError::Kernel(NlError::new("nft", op, errno))
}

impl From<NlError> for NftError {
    fn from(e: NlError) -> NftError {
        NftError::Kernel(e)
    }
}

impl fmt::Display for NftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NftError::Invalid(why) => write!(f, "nftables ruleset refused: {why}"),
            NftError::Kernel(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for NftError {}

/// An nfnetlink socket in the network namespace the calling thread was in
/// at [`open`]. One batch at a time (`&mut self`).
pub struct Nft {
    sock: NlSocket,
    /// What the socket's send buffer holds, as an `SO_SNDBUF` value.
    sndbuf: usize,
    /// What the socket's receive buffer holds, as an `SO_RCVBUF` value.
    rcvbuf: usize,
}

/// Opens the nfnetlink socket.
pub fn open() -> Result<Nft, NftError> {
    // The kernel explains most refusals in an extended ack; we log it.
    let sock = NlSocket::open("nft", NETLINK_NETFILTER, RX_BUF_LEN, true)?;
    let fd = sock.raw().as_raw_fd();
    // The kernel reports twice what was set (its bookkeeping overhead):
    // halved, it compares with what we would set.
    let current = |opt| getsockopt_int(fd, opt).map_or(0, |v| v / 2);
    Ok(Nft {
        sndbuf: current(libc::SO_SNDBUF),
        rcvbuf: current(libc::SO_RCVBUF),
        sock,
    })
}

impl Nft {
    /// Replaces table `inet pathman` with `rs`, atomically: after an error
    /// the previous ruleset is still in place, untouched. `rs` is validated
    /// first ([`NftError::Invalid`], nothing sent).
    pub async fn replace(&mut self, rs: &Ruleset) -> Result<(), NftError> {
        rs.validate().map_err(NftError::Invalid)?;
        let batch = encode::replace_batch(rs, self.sock.take_seq(0));
        self.transact(batch).await
    }

    /// Deletes table `inet pathman` and everything in it; no table is fine.
    pub async fn remove(&mut self) -> Result<(), NftError> {
        let batch = encode::remove_batch(self.sock.take_seq(0));
        match self.transact(batch).await {
            Err(NftError::Kernel(NlError {
                errno: libc::ENOENT,
                ..
            })) => Ok(()),
            r => r,
        }
    }

    /// Does pathman's table exist? A plain read, far cheaper than a
    /// transaction, so a clean start does not pay for removing nothing.
    pub async fn exists(&mut self) -> Result<bool, NftError> {
        const OP: &str = "get table";
        let seq = self.sock.take_seq(1);
        let req = encode::get_table(seq);
        let mut found = false;
        let mut answer = [Answer::default()];
        self.sock
            .exchange(OP, &req, seq, &mut answer, Collect::Every, &mut |_| {
                found = true
            })
            .await?;
        match answer[0].errno {
            Some(0) | None => Ok(found),
            Some(libc::ENOENT) => Ok(false),
            Some(errno) => Err(err(OP, errno)),
        }
    }

    /// Sends one batch in one `send` and collects the kernel's answer to
    /// each message. The kernel processes a batch inside `sendmsg` and
    /// queues every reply before it returns, so the replies are read without
    /// waiting: what is not there when the queue runs dry never comes.
    async fn transact(&mut self, batch: Batch) -> Result<(), NftError> {
        let first = batch.first_seq;
        let end = batch.end_seq();
        // first is BatchBegin (batch-wide failures are reported on it),
        // first+1 ..= end-1 the content messages, end the unanswered BatchEnd.
        self.sock.take_seq(end.wrapping_sub(first) as usize + 1);
        self.size_buffers(batch.buf.len(), batch.ops.len());
        let mut answers = vec![Answer::default(); end.wrapping_sub(first) as usize];
        self.sock
            .exchange(
                "send batch",
                &batch.buf,
                first,
                &mut answers,
                Collect::Queued,
                &mut |_| {},
            )
            .await?;
        let mut answered = 0usize;
        // The earliest refused message: later errors are usually consequences of it.
        let mut first_err: Option<(u32, i32)> = None;
        for (i, a) in answers.iter().enumerate() {
            let seq = first.wrapping_add(i as u32);
            let Some(errno) = a.errno else { continue };
            if i > 0 {
                answered += 1;
            }
            if errno != 0 {
                let op = op_of(&batch, seq);
                log::warn!(
                    "nft: {op}: {}{}",
                    io::Error::from_raw_os_error(errno),
                    a.detail
                        .as_ref()
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default()
                );
                if first_err.is_none() {
                    first_err = Some((seq, errno));
                }
            }
        }
        if let Some((seq, errno)) = first_err {
            return Err(err(op_of(&batch, seq), errno));
        }
        if answered != batch.ops.len() {
            log::warn!(
                "nft: {answered} of {} batch messages answered",
                batch.ops.len()
            );
            return Err(err("read acks", libc::EPROTO));
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
        let fd = self.sock.raw().as_raw_fd();
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
