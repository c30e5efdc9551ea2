//! Every cap, default and reserved number of pathman, in one place.
//!
//! Collections that hold daemon state are bounded (heapless); a request that
//! would exceed a cap gets a clear error naming the cap.

/// Routing protocol number stamped on every route and rule pathman installs
/// (`ip route show proto 196`). A restarted daemon removes what carries it.
pub const RT_PROTO_PATHMAN: u8 = 196;

/// Devices (kernel interfaces) pathman manages at once.
pub const MAX_DEVICES: usize = 16;
/// Services known at once: one per ethernet/gadget device with carrier, one
/// per WiFi network in range (20 APs plus the wired uplinks fit).
pub const MAX_SERVICES: usize = 48;
/// Longest service identifier kept: WiFi's are up to 100 characters
/// (`wifi_` + 12-digit MAC + `_` + 64 hex digits of SSID + `_managed_ieee8021x`).
pub const MAX_SERVICE_ID_LEN: usize = 128;
// ----- WiFi (wpa_supplicant) -----

/// Longest SSID (IEEE 802.11: 32 bytes); a longer one from the supplicant is cut.
pub const WIFI_MAX_SSID_LEN: usize = 32;
/// BSSes kept per radio; beyond it the weakest are dropped (logged), so a
/// hostile or crowded air cannot grow pathman's memory.
pub const WIFI_MAX_BSS: usize = 128;
/// How long an agent has to answer RequestInput (ConnMan: 120 s).
pub const AGENT_TIMEOUT_SECS: u64 = 120;
/// How long a WiFi association may take before it fails (`connect-failed`).
pub const WIFI_ASSOC_TIMEOUT_SECS: u64 = 30;
/// Auto-connect retries of a WiFi favourite that failed: the first after
/// this long, each next one twice as late, up to the maximum.
pub const WIFI_RETRY_FIRST_SECS: u64 = 10;
pub const WIFI_RETRY_MAX_SECS: u64 = 300;
/// The longest wait before pathman creates again a supplicant interface
/// that was removed under it (1 s, doubling per removal).
pub const WIFI_REATTACH_MAX_SECS: u64 = 60;
/// Provisioned networks (`<state-dir>/*.config`), over all files.
pub const MAX_PROVISIONED: usize = 32;
/// Provisioning files read from the state dir.
pub const MAX_PROVISION_FILES: usize = 16;
/// The longest value (path, identity, match string) a provisioning file may give.
pub const MAX_PROVISION_VALUE_LEN: usize = 256;
/// wpa_supplicant signals queued for the WiFi task (a scan of many BSSes
/// sends a burst).
pub const WIFI_SIGNAL_QUEUE: usize = 1024;

/// Cellular services per modem (a modem may list many contexts; ConnMan
/// makes one service per internet context, and more than a few is odd).
pub const CELLULAR_MAX_CONTEXTS: usize = 4;
/// Modems pathman follows (more are logged and ignored).
pub const CELLULAR_MAX_MODEMS: usize = 4;
/// How long `ConnectionContext.SetProperty(Active, true)` may take
/// (ConnMan's 40 s).
pub const CELLULAR_ACTIVATE_TIMEOUT_SECS: u64 = 40;
/// Longest string property pathman keeps from oFono (names, APNs, types).
pub const OFONO_MAX_STRING: usize = 100;
/// Interfaces listed for a modem, at most.
pub const OFONO_MAX_INTERFACES: usize = 32;
/// oFono signals waiting for the cellular task; one more is dropped with a
/// log line (oFono sends few: a modem's changes, not a scan's hundreds).
pub const OFONO_SIGNAL_QUEUE: usize = 256;
/// Longest passphrase/identity accepted from an agent (WPA: 64 hex digits).
pub const WIFI_MAX_SECRET_LEN: usize = 64;

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
/// Base of the default routes' metrics of the other connected services: a
/// service's fallback default route has `FALLBACK_ROUTE_METRIC_BASE + ifindex`.
/// Stable per interface, so an uplink coming or going does not renumber the
/// others' routes (no churn); the kernel fails over to the lowest at once and
/// pathman then gives the new default service metric 0.
pub const FALLBACK_ROUTE_METRIC_BASE: u32 = 1024;

/// First routing table of per-service multipath tables: table = base + ifindex (SPEC §4).
pub const SERVICE_TABLE_BASE: u32 = 255;
/// Session n gets fwmark = table = base + n (SPEC §5).
pub const SESSION_MARK_BASE: u32 = 0x10000;
/// Default base of pathman's rule priorities; bands are base+0 (session multipath),
/// base+100 (session default), base+200 (service source routing).
pub const RULE_PRIORITY_BASE: u32 = 31100;
/// Distance between two rule bands.
pub const RULE_BAND_STEP: u32 = 100;

/// Receive buffer of the rtnetlink event socket: big enough that a burst of
/// events (many uplinks flapping) does not overrun it.
pub const RTNL_EVENT_RCVBUF: usize = 1024 * 1024;
/// Changes sent to rtnetlink in one datagram. Each is acked; 128 acks
/// (~36 bytes each, up to ~100 with an echoed message) fit the default
/// receive buffer many times over, so a large reconcile after a restart
/// cannot lose acks.
pub const RTNL_OPS_PER_BATCH: usize = 128;

// ----- DHCPv4 server (tethering) -----

/// Longest client identifier (option 61) the tethering server keys a binding by; longer
/// ones (up to 255 bytes can arrive) are refused with a log line.
pub const DHCP_SERVER_MAX_CLIENT_ID: usize = 64;
/// Offers and leases one chaddr may hold at once, across the client ids it sends.
pub const DHCP_SERVER_MAX_PER_MAC: usize = 4;
/// How long an OFFER holds its address for the client (a DISCOVER flood takes the oldest
/// offers first, never leases).
pub const DHCP_SERVER_OFFER_HOLD_SECS: u64 = 30;
/// How long a DECLINEd address is not given out.
pub const DHCP_SERVER_QUARANTINE_SECS: u64 = 600;
/// Replies queued before the socket sends them.
pub const DHCP_SERVER_MAX_QUEUED: usize = 64;
/// Receive buffer of the server's socket, bytes (a datagram takes ~1.3 kB of it).
pub const DHCP_SERVER_RCVBUF: usize = 512 * 1024;
/// Lease changes are reported (leases file, GetTetheringClients) at most this often; a
/// crash loses at most this much, and a client without a record is still granted its
/// address when it is free (INIT-REBOOT, RENEWING).
pub const DHCP_SERVER_EVENT_GAP_MS: u64 = 100;

// ----- DHCPv4 client and IPv4 link-local -----

/// Most DNS servers kept from one lease (option 6); further ones are logged and ignored.
pub const MAX_DNS_SERVERS: usize = MAX_SERVERS;
/// Most NTP servers kept from one lease (option 42); further ones are logged and ignored.
pub const MAX_NTP_SERVERS: usize = MAX_SERVERS;
/// Longest domain name (option 15) kept; a longer one is logged and ignored (RFC 1035 limit).
pub const MAX_DOMAIN_LEN: usize = MAX_NAME_LEN;
/// Longest host name (option 12) kept; a longer one is logged and ignored (RFC 1035 label limit).
pub const MAX_HOSTNAME_LEN: usize = 63;
/// First DHCP retransmission timeout in seconds (RFC 2131 §4.1).
pub const DHCP_RETRY_INITIAL_SECS: u64 = 4;
/// Cap of the exponential DHCP retransmission backoff in seconds (RFC 2131 §4.1).
pub const DHCP_RETRY_MAX_SECS: u64 = 64;
/// Jitter applied to each DHCP retransmission, ± this many milliseconds (RFC 2131 §4.1).
pub const DHCP_RETRY_JITTER_MS: u64 = 1000;
/// REQUESTs sent in REQUESTING before giving the offer up and going back to INIT.
pub const DHCP_REQUEST_RETRIES: u32 = 4;
/// REQUESTs sent in INIT-REBOOT before forgetting the remembered address.
pub const DHCP_REBOOT_RETRIES: u32 = 2;
/// Shortest wait between REQUESTs in RENEWING/REBINDING in seconds (RFC 2131 §4.4.5).
pub const DHCP_RENEW_MIN_RETRY_SECS: u64 = 60;
/// Unanswered DISCOVERs after which IPv4 link-local is started alongside DHCP.
pub const IPV4LL_AFTER_DISCOVERS: u32 = 3;
/// Instances of one option the codec concatenates (RFC 3396). A 253-byte name split at
/// 255 needs two, overloading into `file`/`sname` a third; more is a broken or hostile
/// server and the message is dropped.
pub const DHCP_MAX_OPTION_PARTS: usize = 8;
/// Shortest lease accepted as is; a shorter one is treated as this long (logged). With
/// T1 = lease/2 this caps renewals at one per 30 s whatever a server sends (a 1 s lease
/// used to make the client renew thousands of times per second). busybox udhcpc floors at
/// 122 s, dhcpcd at 20 s; 60 s matches [`DHCP_RENEW_MIN_RETRY_SECS`].
pub const DHCP_MIN_LEASE_SECS: u32 = 60;
/// Earliest T1 (renewal) after an ACK, in seconds; a server's shorter T1/T2 is ignored and
/// the RFC 2131 defaults are used. Half the shortest lease.
pub const DHCP_MIN_RENEW_SECS: u32 = DHCP_MIN_LEASE_SECS / 2;
/// Consecutive NAKs answered by restarting at once; after more, each restart waits like a
/// retransmission ([`DHCP_RETRY_INITIAL_SECS`] doubling to [`DHCP_RETRY_MAX_SECS`]). One
/// quick restart keeps a move to another network fast (INIT-REBOOT NAK), the backoff keeps
/// a server that NAKs everything from making the client spin.
pub const DHCP_NAK_QUICK_RESTARTS: u32 = 1;
/// Wait after a DHCPDECLINE before starting again (RFC 2131 §3.1 step 5: at least 10 s, so
/// a server that keeps offering a taken address cannot make client and server loop).
pub const DHCP_DECLINE_RESTART_SECS: u64 = 10;
/// Shortest subnet prefix accepted from a lease. A shorter mask would make the connected
/// route swallow several /8s; no real DHCP subnet is larger than 10.0.0.0/8.
pub const DHCP_MIN_PREFIX_LEN: u8 = 8;
/// ARP probes (RFC 5227 §2.1.1) sent for an offered address before it is configured. Two,
/// so one lost frame does not hide a conflict.
pub const ACD_PROBE_NUM: u32 = 2;
/// Milliseconds between those probes.
pub const ACD_PROBE_INTERVAL_MS: u64 = 20;
/// Milliseconds from the first probe until the address counts as free, if no host answered
/// or probed for it. RFC 5227's own timers (1-2 s between 3 probes, then 2 s) would triple
/// start-up time; a host that holds the address answers a probe at once (Linux and Windows
/// reply without delay, wired round trips are well under a millisecond, a busy WLAN tens of
/// milliseconds), and the probing runs in parallel with the REQUEST/ACK round trip, so
/// this is all that the check adds to start-up. A dozing host may be missed; the cost is
/// one undetected conflict, as without the check.
pub const ACD_PROBE_WINDOW_MS: u64 = 50;
/// Maximum DHCP message size we announce (option 57): an untagged Ethernet MTU.
pub const DHCP_MAX_MESSAGE_SIZE: u16 = 1500;
/// Receive buffer for one DHCP packet on the raw or UDP socket.
pub const DHCP_RX_BUFFER: usize = 1536;
/// RFC 3927 §9: initial random delay before probing, milliseconds.
pub const IPV4LL_PROBE_WAIT_MS: u64 = 1000;
/// RFC 3927 §9: probes sent per candidate.
pub const IPV4LL_PROBE_NUM: u32 = 3;
/// RFC 3927 §9: minimum delay between probes, milliseconds.
pub const IPV4LL_PROBE_MIN_MS: u64 = 1000;
/// RFC 3927 §9: maximum delay between probes, milliseconds.
pub const IPV4LL_PROBE_MAX_MS: u64 = 2000;
/// RFC 3927 §9: delay after the last probe before announcing, milliseconds.
pub const IPV4LL_ANNOUNCE_WAIT_MS: u64 = 2000;
/// RFC 3927 §9: announcements sent.
pub const IPV4LL_ANNOUNCE_NUM: u32 = 2;
/// RFC 3927 §9: delay between announcements, milliseconds.
pub const IPV4LL_ANNOUNCE_INTERVAL_MS: u64 = 2000;
/// RFC 3927 §9: conflicts after which attempts are rate limited.
pub const IPV4LL_MAX_CONFLICTS: u32 = 10;
/// RFC 3927 §9: delay between attempts once rate limited, milliseconds.
pub const IPV4LL_RATE_LIMIT_INTERVAL_MS: u64 = 60_000;
/// RFC 3927 §9: a second conflict within this many milliseconds gives the address up.
pub const IPV4LL_DEFEND_INTERVAL_MS: u64 = 10_000;

// ----- MPTCP path manager -----

/// MPTCP endpoints the in-kernel path manager keeps per netns
/// (`MPTCP_PM_ADDR_MAX` in `net/mptcp/pm_kernel.c`; one more ADD_ADDR gets
/// `-ERANGE`). The endpoint planner never plans past it.
pub const MPTCP_MAX_ENDPOINTS: usize = 8;
/// Largest `subflows` / `add_addr_accepted` limit the kernel accepts
/// (`MPTCP_PM_ADDR_MAX`); larger values are refused before asking it.
pub const MPTCP_MAX_LIMIT: u32 = 8;

// ----- Sessions -----

/// Flow selectors one session may carry (`FlowSelectors` setting, SPEC §5).
pub const MAX_SELECTORS_PER_SESSION: usize = 64;
/// Flow selectors over all sessions together (each becomes one nftables rule).
pub const MAX_SELECTORS_TOTAL: usize = 1024;
/// Longest flow selector text accepted. The longest meaningful one (two
/// bracketed IPv6 addresses with prefixes, `udplite`, two port ranges) is
/// about 140 characters.
pub const MAX_SELECTOR_LEN: usize = 256;
/// Sessions at once (marks and tables 0x10000 + 0 .. 0x10000 + MAX_SESSIONS - 1).
pub const MAX_SESSIONS: usize = 64;
/// Sessions one D-Bus connection of an unprivileged user may own; a client
/// that floods CreateSession gets a clear error past this.
pub const MAX_SESSIONS_PER_CLIENT: usize = 16;
/// Sessions one unprivileged user may own over all its connections (one
/// user opening many connections cannot take every mark).
pub const MAX_SESSIONS_PER_UID: usize = 16;
/// Session marks only root and AdminGroup may take, so they can always
/// create a session however many unprivileged users hold.
pub const SESSIONS_RESERVED_FOR_ADMIN: usize = 8;
/// Flow selectors one unprivileged user may hold over all its sessions.
pub const MAX_SELECTORS_PER_UID: usize = 256;
/// Flow selectors (of [`MAX_SELECTORS_TOTAL`]) only root and AdminGroup may use.
pub const SELECTORS_RESERVED_FOR_ADMIN: usize = 256;

// ----- D-Bus -----

/// Largest D-Bus message pathman reads. ConnMan's biggest legitimate call is a
/// CreateSession with 64 flow selectors of 256 characters (~17 KiB); a larger
/// message is dropped while it streams in (never buffered whole) and a method
/// call gets `org.freedesktop.DBus.Error.LimitsExceeded`, so a local user
/// cannot make a 64 MB router allocate tens of megabytes per call.
pub const MAX_DBUS_MESSAGE: usize = 128 * 1024;
/// Dropped oversized calls whose error reply is queued at once; beyond it
/// the reply is skipped (the drop is still counted and logged).
pub const DBUS_OVERSIZED_QUEUE: usize = 16;
/// Usage counters registered at once (`RegisterCounter`).
pub const MAX_COUNTERS: usize = 16;
/// Usage counters one D-Bus connection may register.
pub const MAX_COUNTERS_PER_CLIENT: usize = 4;
/// Shortest `period` of a counter, seconds (a period of 0 means this).
pub const COUNTER_MIN_PERIOD_SECS: u32 = 1;
/// Longest `period` of a counter, seconds (one day).
pub const COUNTER_MAX_PERIOD_SECS: u32 = 86_400;

// ----- nftables -----

/// Mark rules (uid/gid/source-address/flow selectors of all sessions) in one
/// ruleset: every selector plus a uid, a gid and two source addresses per
/// session; a bigger ruleset is refused before anything is sent.
pub const MAX_MARK_RULES: usize = MAX_SELECTORS_TOTAL + 4 * MAX_SESSIONS;
/// SNAT rules (one per session and family) in one ruleset.
pub const MAX_SNAT_RULES: usize = 2 * MAX_SESSIONS;
/// Mark rules of one shape at which they go into one map lookup instead of
/// one rule each: below it, plain rules are as cheap and easier to read.
pub const NFT_MAP_MIN_ELEMENTS: usize = 4;

// ----- Configuration and state files -----

/// Largest keyfile pathman reads: main.conf, board configs, session policy
/// files and the state dir's settings files. ConnMan's biggest files are its
/// fully commented main.conf (7.9 KB as Debian ships it) and a service's
/// `settings` (about 20 keys, under 1 KB even with a WiFi passphrase and
/// proxy lists); 64 KiB leaves eight times the largest. It also bounds what
/// one file can cost a 64 MB router: the bytes, plus at most about 2 MB once
/// parsed (measured worst case: 13 000 one-letter keys, or 11 000 empty
/// groups, in 64 KiB). A bigger file is refused with a warning and defaults,
/// never read.
pub const MAX_KEYFILE_BYTES: u64 = 64 * 1024;

// ----- Time: SNTP client and the stub resolver that feeds it names -----

/// Timeservers one SNTP client works through (SPEC §6 joins four sources: the service's
/// Timeservers.Configuration, DHCP option 42, Clock.Timeservers, FallbackTimeservers, each
/// at most [`MAX_SERVERS`]). Later entries of a longer list are logged and ignored.
pub const SNTP_MAX_SERVERS: usize = 4 * MAX_SERVERS;
/// Addresses kept from the resolution of one timeserver name (pool.ntp.org answers four).
pub const SNTP_MAX_ADDRS_PER_NAME: usize = 4;
/// Server addresses whose kiss-o'-death penalty (DENY/RSTR: never again; RATE: slower) is
/// remembered for the life of a list, across re-resolutions of the names that led to them.
pub const SNTP_MAX_PENALTIES: usize = SNTP_MAX_SERVERS * SNTP_MAX_ADDRS_PER_NAME;
/// Poll exponent of the first exchanges (16 s): the floor RFC 4330 §10 allows (never below
/// 15 s) and what the interval never goes under, whatever a server's poll field says.
pub const SNTP_BURST_POLL_EXP: u8 = 4;
/// Smallest steady-state poll exponent (64 s, chrony's and RFC 5905's minpoll).
pub const SNTP_MIN_POLL_EXP: u8 = 6;
/// Largest poll exponent (1024 s, chrony's maxpoll). A server's poll field or a RATE kiss
/// can lengthen the interval up to this, never beyond.
pub const SNTP_MAX_POLL_EXP: u8 = 10;
/// Measured offsets that move by less than this between two exchanges double the poll
/// interval (timesyncd: 50 ms).
pub const SNTP_POLL_STABLE_MS: u64 = 50;
/// Measured offsets that move by more than this between two exchanges drop the interval
/// back to the minimum (timesyncd: 200 ms); a stepped clock does that once.
pub const SNTP_POLL_UNSTABLE_MS: u64 = 200;
/// Wait for the first answer to a request; doubled for each resend.
pub const SNTP_TIMEOUT_INITIAL_MS: u64 = 1000;
/// Requests sent to one server (1 s + 2 s + 4 s of waiting) before the next server is tried.
pub const SNTP_TRIES: u32 = 3;
/// Wait before the whole list is tried again after every server failed; doubled each time
/// up to 2^[`SNTP_MAX_POLL_EXP`] s (ConnMan: a fixed 5 s, which hammers a dead list).
pub const SNTP_LIST_RETRY_INITIAL_SECS: u64 = 16;
/// Largest root distance accepted, our own path included: (root delay + delay) / 2 + root
/// dispersion (RFC 5905 Appendix A MAXDIST; the error bound of the time we would report).
pub const SNTP_MAX_ROOT_DISTANCE_MS: u64 = 1000;
/// A measurement counts as current for this long; with no valid one since, the client says
/// unsynchronised. Four maximal poll intervals: one lost exchange, and the retries after
/// it, do not flip the state.
pub const SNTP_SYNC_MAX_AGE_SECS: u64 = 4 << SNTP_MAX_POLL_EXP;
/// How long the SNTP client waits for its owner to answer a `Resolve` event before it takes
/// the name as unresolvable for this round (the resolver gives up well before: see
/// [`DNS_TIMEOUT_INITIAL_MS`], [`DNS_TRIES_PER_SERVER`], [`DNS_ROUNDS`]).
pub const SNTP_RESOLVE_WAIT_SECS: u64 = 60;
/// A name's addresses are kept at least this long whatever its TTL (dnsmasq's local
/// answers say 0), so a failing list does not cost a DNS query per round.
pub const SNTP_MIN_RESOLVE_TTL_SECS: u64 = 300;
/// While a later server is in use, the first one of the list is tried again after this
/// long (ConnMan rechecks its preferred server every 7200 s).
pub const SNTP_PREFERRED_RECHECK_SECS: u64 = 7200;
/// Events an SNTP or resolver machine queues before its owner drains them; the owner drains
/// after every call, so on overflow the oldest (already stale) one is dropped and logged.
pub const SNTP_MAX_EVENTS: usize = 8;

/// Largest DNS message read (RFC 1035 §4.2.1 UDP limit; pathman sends no EDNS0, so a server
/// sends no more and sets TC instead).
pub const DNS_MAX_MESSAGE: usize = 512;
/// Addresses kept from one answer; further ones are ignored.
pub const DNS_MAX_ADDRS: usize = 8;
/// CNAMEs followed inside one response before the answer is refused (a loop or a chain no
/// real zone needs).
pub const DNS_MAX_CNAME_CHAIN: usize = 8;
/// Wait for an answer from one DNS server; doubled for the resend.
pub const DNS_TIMEOUT_INITIAL_MS: u64 = 1000;
/// Queries sent to one DNS server before the next is asked.
pub const DNS_TRIES_PER_SERVER: u32 = 2;
/// Times the whole DNS server list is tried before the name counts as unresolvable
/// (with [`MAX_SERVERS`] servers: at most 2 * 4 * (1 + 2) s = 24 s).
pub const DNS_ROUNDS: u32 = 2;

// ----- Online check and reachability probe (SPEC §6, reference/time-online.md §4) -----

/// Largest HTTP response head read from the online check's server: ConnMan's status page
/// answers with about 300 bytes of head; 4 KiB leaves a dozen times that. Anything longer
/// (a hostile or broken server) is a failed check, and the connection is closed unread.
pub const HTTP_MAX_HEAD: usize = 4096;
/// Largest HTTP request built (request line with the URL's path, Host, User-Agent,
/// Connection): bounds the path of the configured check URL.
pub const HTTP_MAX_REQUEST: usize = 1024;
/// Longest path (with query) of the check URL kept.
pub const HTTP_MAX_PATH: usize = 512;
/// Time the check's TCP connect may take: ConnMan's OnlineCheckConnectTimeout default is
/// the OS's (~127 s of SYN retries on a blackhole, reference/time-online.md §4); a live
/// uplink connects in well under a second.
pub const ONLINE_HTTP_CONNECT_TIMEOUT_MS: u64 = 3000;
/// Time a whole HTTP check (connect, request, response head) may take.
pub const ONLINE_HTTP_TIMEOUT_MS: u64 = 5000;
/// The checker waits this much longer than [`ONLINE_HTTP_TIMEOUT_MS`] for the transport's
/// report before it counts the check as timed out itself (a transport that lost it).
pub const ONLINE_HTTP_BACKSTOP_MS: u64 = 1000;
/// First wait before a failed (or portal) HTTP check is tried again; doubled each time.
pub const ONLINE_HTTP_RETRY_INITIAL_MS: u64 = 2000;
/// Longest wait between two failed HTTP checks (ConnMan: 12² = 144 s).
pub const ONLINE_HTTP_RETRY_MAX_MS: u64 = 120_000;
/// While online with a ping target that never answered (ICMP filtered), the HTTP check is
/// the only probe: repeated this often (metered: [`ONLINE_HTTP_FALLBACK_METERED_SECS`]).
pub const ONLINE_HTTP_FALLBACK_SECS: u64 = 60;
/// The same for metered services.
pub const ONLINE_HTTP_FALLBACK_METERED_SECS: u64 = 600;
/// ICMP echo payload bytes. Zero: identifier and sequence number already match a reply to
/// its request, and every byte counts 2 × 30 times a minute against the probe budget
/// (SPEC §6: ≤ 2 KB/minute per uplink; 20 + 8 bytes each way = 56 bytes per probe).
pub const PING_PAYLOAD_LEN: usize = 0;
/// Steady-state ping interval while online: with [`PING_TIMEOUT_MS`] and
/// [`PING_SUSPECT_SPACING_MS`], a black hole is found 1.25 s after the first lost probe,
/// so within 2.25 s median and 3.25 s worst; 30 probes × 56 bytes = 1680 bytes/minute.
pub const PING_INTERVAL_MS: u64 = 2000;
/// Ping interval while online on a metered service (1.5 probes/minute = 84 bytes/minute).
pub const PING_INTERVAL_METERED_MS: u64 = 40_000;
/// Wait for an echo reply before the probe counts as lost (a live path answers in tens of
/// milliseconds; mwan3track waits 4 s, which is what makes it slow).
pub const PING_TIMEOUT_MS: u64 = 500;
/// Spacing of the probes after a lost one (suspicion), until an answer or the verdict.
pub const PING_SUSPECT_SPACING_MS: u64 = 250;
/// Consecutive lost probes that make an online service offline.
pub const PING_MISSES_OFFLINE: u32 = 3;
/// Ping interval while not online (to see the Internet come back).
pub const PING_INTERVAL_OFFLINE_MS: u64 = 1000;
/// The same on a metered service.
pub const PING_INTERVAL_OFFLINE_METERED_MS: u64 = 10_000;
/// Consecutive answers while not online before the HTTP check runs again (no flapping:
/// one lucky packet through a dying link does not make it online).
pub const PING_SUCCESSES_RECOVER: u32 = 3;
/// Echo requests in flight at once; an older one is forgotten (not counted) when full.
pub const PING_MAX_OUTSTANDING: usize = 8;
/// Ping targets one checker uses (configured ones beyond this are logged and ignored).
pub const PING_MAX_TARGETS: usize = MAX_SERVERS;
/// Receive buffer of the raw ICMP socket: IPv4 header (up to 60) + ICMP header + payload
/// of an echo reply; longer packets (other ICMP traffic) are cut and dropped.
pub const ICMP_RX_BUFFER: usize = 128;
/// Wait before the check tries DNS again after the name could not be resolved.
pub const ONLINE_DNS_RETRY_SECS: u64 = 10;
/// The check host's address is kept at least this long whatever its TTL (dnsmasq answers
/// say 0); it is resolved again before the next HTTP check after that.
pub const ONLINE_MIN_RESOLVE_TTL_SECS: u64 = 300;
