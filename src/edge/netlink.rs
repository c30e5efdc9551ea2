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
