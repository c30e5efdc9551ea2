//! The MPTCP path-manager edge: endpoints and limits of the in-kernel path
//! manager over generic netlink (`mptcp_pm`). What to change is decided by
//! [`crate::core::mptcp::plan`]; this module only carries it out.

mod wire;

use crate::edge::netlink::{Answer, Collect, NlError, NlSocket};
use std::fmt;

use netlink_packet_core::{
    Emitable, NetlinkMessage, NetlinkPayload, ParseableParametrized, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::protocols::NETLINK_GENERIC;

use crate::caps::MPTCP_MAX_LIMIT;
pub use crate::core::mptcp::{Endpoint, EndpointFlags, EndpointOp, Limits};
use wire::PmMessage;

/// Per-netns switch; missing when the kernel has no MPTCP at all.
const ENABLED_SYSCTL: &str = "/proc/sys/net/mptcp/enabled";
/// Receive buffer size: the kernel caps dump datagrams at 32 KiB, and eight
/// endpoints take well under 1 KiB.
const RX_BUF_LEN: usize = 32 * 1024;

/// A failed path-manager operation (the netlink edges' one error type).
pub type MptcpError = NlError;

fn err(op: &'static str, errno: i32) -> MptcpError {
    NlError::new("mptcp", op, errno)
}

/// A generic netlink socket bound to the `mptcp_pm` family of the network
/// namespace the calling thread was in at [`Mptcp::open`]. One request at a
/// time (`&mut self`); replies are matched by sequence number.
pub struct Mptcp {
    sock: NlSocket,
    family_id: u16,
    tx: Vec<u8>,
}

impl Mptcp {
    /// Opens the socket and resolves the family id. `None` when MPTCP is
    /// unusable here: the sysctl is missing or 0, or the kernel has no
    /// `mptcp_pm` family. Says why at info level.
    pub async fn open() -> Result<Option<Mptcp>, MptcpError> {
        match std::fs::read_to_string(ENABLED_SYSCTL) {
            Err(e) => {
                log::info!("mptcp: {ENABLED_SYSCTL}: {e}; no MPTCP in this kernel, leaving endpoints alone");
                return Ok(None);
            }
            Ok(s) if s.trim() == "0" => {
                log::info!("mptcp: net.mptcp.enabled is 0, leaving endpoints alone");
                return Ok(None);
            }
            Ok(_) => {}
        }
        let mut pm = Mptcp {
            sock: NlSocket::open("mptcp", NETLINK_GENERIC, RX_BUF_LEN, false)?,
            family_id: 0,
            tx: Vec::with_capacity(256),
        };
        let ask = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(wire::FAMILY_NAME.into())],
        };
        let mut id = None;
        let res = pm
            .request("resolve family", ask, NLM_F_ACK, &mut |m: GenlCtrl| {
                for a in m.nlas {
                    if let GenlCtrlAttrs::FamilyId(v) = a {
                        id = Some(v);
                    }
                }
            })
            .await;
        match (res, id) {
            (Ok(_), Some(id)) => {
                pm.family_id = id;
                Ok(Some(pm))
            }
            (Err(e), _) if e.errno == libc::ENOENT => {
                log::info!(
                    "mptcp: no {} genl family, leaving endpoints alone",
                    wire::FAMILY_NAME
                );
                Ok(None)
            }
            (Err(e), _) => Err(e),
            (Ok(_), None) => Err(err("resolve family", libc::EPROTO)),
        }
    }

    /// All endpoints (GET_ADDR dump), retried once if a concurrent change
    /// interrupted the dump.
    pub async fn endpoints(&mut self) -> Result<Vec<Endpoint>, MptcpError> {
        const OP: &str = "dump endpoints";
        let mut out = Vec::new();
        for _ in 0..2 {
            out.clear();
            let interrupted = self
                .request(
                    OP,
                    PmMessage::get_addrs(),
                    NLM_F_DUMP,
                    &mut |m: PmMessage| match m.endpoint() {
                        Some(ep) => out.push(ep),
                        None => {
                            log::debug!("mptcp: skipping endpoint without id or address: {m:?}")
                        }
                    },
                )
                .await?;
            if !interrupted {
                return Ok(out);
            }
            log::debug!("mptcp: {OP} interrupted, retrying");
        }
        Err(err(OP, libc::EINTR))
    }

    /// Adds an endpoint bound to `ifindex`; the kernel picks the id.
    /// Returns that id.
    pub async fn add(
        &mut self,
        addr: std::net::IpAddr,
        ifindex: u32,
        flags: EndpointFlags,
    ) -> Result<u8, MptcpError> {
        self.add_with_id(0, addr, ifindex, flags).await
    }

    /// Adds an endpoint with the given id (0: the kernel picks) and returns
    /// the id it got. The kernel does not echo the id, so a picked id is
    /// read back with a dump.
    pub async fn add_with_id(
        &mut self,
        id: u8,
        addr: std::net::IpAddr,
        ifindex: u32,
        flags: EndpointFlags,
    ) -> Result<u8, MptcpError> {
        const OP: &str = "add endpoint";
        let msg = PmMessage::add_addr(id, addr, ifindex, flags);
        self.request(OP, msg, NLM_F_ACK, &mut |_| {}).await?;
        if id != 0 {
            return Ok(id);
        }
        let eps = self.endpoints().await?;
        eps.iter()
            .find(|e| e.addr == addr)
            .map(|e| e.id)
            // Someone deleted it between our add and our dump.
            .ok_or(err(OP, libc::ENOENT))
    }

    /// Deletes the endpoint with this id. Id 0 names the initial subflow's
    /// address, not an endpoint, and is refused.
    pub async fn del(&mut self, id: u8) -> Result<(), MptcpError> {
        const OP: &str = "delete endpoint";
        if id == 0 {
            return Err(err(OP, libc::EINVAL));
        }
        self.request(OP, PmMessage::del_addr(id), NLM_F_ACK, &mut |_| {})
            .await
            .map(drop)
    }

    /// Sets backup/fullmesh of the endpoint with this id; the kernel sends
    /// MP_PRIO on live connections when backup changes. Other bits are
    /// ignored by the kernel.
    pub async fn set_flags(&mut self, id: u8, flags: EndpointFlags) -> Result<(), MptcpError> {
        self.request(
            "set endpoint flags",
            PmMessage::set_flags(id, flags),
            NLM_F_ACK,
            &mut |_| {},
        )
        .await
        .map(drop)
    }

    /// Applies one planned op; returns the new id for an add.
    pub async fn apply(&mut self, op: EndpointOp) -> Result<Option<u8>, MptcpError> {
        match op {
            EndpointOp::Add {
                addr,
                ifindex,
                flags,
            } => self.add(addr, ifindex, flags).await.map(Some),
            EndpointOp::Del { id } => self.del(id).await.map(|_| None),
            EndpointOp::SetFlags { id, flags } => self.set_flags(id, flags).await.map(|_| None),
        }
    }

    /// The per-netns limits.
    pub async fn limits(&mut self) -> Result<Limits, MptcpError> {
        const OP: &str = "get limits";
        let mut out = None;
        self.request(
            OP,
            PmMessage::get_limits(),
            NLM_F_ACK,
            &mut |m: PmMessage| out = out.or(m.limits()),
        )
        .await?;
        out.ok_or(err(OP, libc::EPROTO))
    }

    /// Sets the per-netns limits. Values above the kernel's maximum are
    /// refused here (EINVAL, as the kernel would).
    pub async fn set_limits(&mut self, l: Limits) -> Result<(), MptcpError> {
        const OP: &str = "set limits";
        if l.subflows > MPTCP_MAX_LIMIT || l.add_addr_accepted > MPTCP_MAX_LIMIT {
            return Err(err(OP, libc::EINVAL));
        }
        self.request(OP, PmMessage::set_limits(l), NLM_F_ACK, &mut |_| {})
            .await
            .map(drop)
    }

    /// Sends one request (`flags` adds NLM_F_ACK or NLM_F_DUMP to
    /// NLM_F_REQUEST) through the shared netlink helper; data replies go to
    /// `on_data`. Returns whether a dump was interrupted.
    async fn request<F>(
        &mut self,
        op: &'static str,
        payload: F,
        flags: u16,
        on_data: &mut dyn FnMut(F),
    ) -> Result<bool, MptcpError>
    where
        F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + fmt::Debug,
    {
        let seq = self.sock.take_seq(1);
        let mut genl = GenlMessage::from_payload(payload);
        genl.set_resolved_family_id(self.family_id);
        let mut nl = NetlinkMessage::from(genl);
        nl.header.flags = NLM_F_REQUEST | flags;
        nl.header.sequence_number = seq;
        nl.finalize();
        self.tx.clear();
        self.tx.resize(nl.buffer_len(), 0);
        nl.serialize(&mut self.tx);
        let Mptcp { sock, tx, .. } = self;
        let mut answer = [Answer::default()];
        let interrupted = sock
            .exchange(op, tx, seq, &mut answer, Collect::Every, &mut |msg| {
                let kind = msg.message_type();
                match NetlinkMessage::<GenlMessage<F>>::deserialize(msg.into_inner()) {
                    Ok(NetlinkMessage {
                        payload: NetlinkPayload::InnerMessage(m),
                        ..
                    }) => on_data(m.payload),
                    Ok(_) => {}
                    Err(e) => log::debug!("mptcp: skipping undecodable message type {kind}: {e}"),
                }
            })
            .await?;
        match answer[0].errno {
            Some(0) | None => Ok(interrupted),
            Some(errno) => Err(err(op, errno)),
        }
    }
}
