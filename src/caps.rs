//! Every cap, default and reserved number of pathman, in one place.
//!
//! Collections that hold daemon state are bounded (heapless); a request that
//! would exceed a cap gets a clear error naming the cap.

/// Routing protocol number stamped on every route and rule pathman installs
/// (`ip route show proto 196`). A restarted daemon removes what carries it.
pub const RT_PROTO_PATHMAN: u8 = 196;

/// Devices (kernel interfaces) pathman manages at once.
pub const MAX_DEVICES: usize = 16;
/// Services known at once (one per ethernet/gadget device with carrier for now).
pub const MAX_SERVICES: usize = 16;
/// Addresses reported per service and family (SLAAC may give several).
pub const MAX_ADDRS_PER_FAMILY: usize = 4;
/// Nameservers, timeservers and search domains per service (configured or learned).
pub const MAX_SERVERS: usize = 4;
/// Longest host or domain name kept (RFC 1035).
pub const MAX_NAME_LEN: usize = 253;
/// Longest interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// Metric of the default service's default route in `main`.
pub const DEFAULT_ROUTE_METRIC: u32 = 0;
/// Metric step between the default routes of the other connected services:
/// the n-th service in order gets `n * DEFAULT_ROUTE_METRIC_STEP`.
pub const DEFAULT_ROUTE_METRIC_STEP: u32 = 1024;

/// First routing table of per-service multipath tables: table = base + ifindex (SPEC §4).
pub const SERVICE_TABLE_BASE: u32 = 255;
/// Session n gets fwmark = table = base + n (SPEC §5).
pub const SESSION_MARK_BASE: u32 = 0x10000;
/// Default base of pathman's rule priorities; bands are base+0 (session multipath),
/// base+100 (session default), base+200 (service source routing).
pub const RULE_PRIORITY_BASE: u32 = 31100;
/// Distance between two rule bands.
pub const RULE_BAND_STEP: u32 = 100;

/// D-Bus requests a single client may have in flight before it is refused.
pub const MAX_PENDING_CALLS_PER_CLIENT: usize = 16;
