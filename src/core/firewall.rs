//! PLACEHOLDER: the other helper's firewall.rs replaces this file.

use std::net::IpAddr;

/// Address family of a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

/// A 5-tuple match; `None` = any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowMatch {
    pub family: Option<Family>,
    pub src: Option<(IpAddr, u8)>,
    pub dst: Option<(IpAddr, u8)>,
    pub proto: Option<u8>,
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
}

/// PLACEHOLDER types (same as the nft helper's spec).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ruleset {
    pub marks: Vec<MarkRule>,
    pub snat: Vec<SnatRule>,
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarkRule {
    pub mark: u32,
    pub m: Match,
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Match {
    Uid(u32),
    Gid(u32),
    Saddr(IpAddr),
    Flow(FlowMatch),
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnatRule {
    pub mark: u32,
    pub oif: u32,
    pub addr: IpAddr,
}
