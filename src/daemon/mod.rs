//! The event loop: one `smol::LocalExecutor` on the main thread. Events from
//! the kernel (rtnetlink), the DHCP drivers, the D-Bus connection and signals
//! feed the pure model; after each event the loop settles: it applies the
//! difference between the planned and the actual kernel state, carries out
//! the model's actions, rewrites resolv.conf and emits D-Bus signals.

mod apply;
mod bus_task;
mod cellular;
mod counters;
mod devices;
mod dump;
mod events;
mod instance;
pub mod logging;
pub mod options;
mod policies;
mod provisioning;
mod saver;
mod settle;
mod tasks;
mod tether;
mod time;
mod wifi;

use std::path::PathBuf;

use events::EventTx;
use smol::LocalExecutor;

use crate::config::store::Store;
use crate::core::model::{Model, ModelSettings};
use crate::core::mptcp::{DesiredEndpoint, EndpointFlags, Limits};
use crate::core::netstate::NetState;
use crate::core::types::{MptcpLink, Technology};
use crate::dbus::server::{self, Access};
use crate::dbus::signals::Snapshot;
use crate::dhcp::acquire::DhcpEventKind;
use crate::edge::mptcp::Mptcp;
use crate::edge::rtnl::{Events, KernelEvent, Rtnl};
use devices::Devices;

/// Everything that reaches the core, through one bounded channel
/// ([`events::EventTx`]): kernel events, protocol tasks, the bus, signals,
/// files. Deadlines of the loop's own (counters, lease expiry, a policy
/// reload) are timers beside it.
pub enum Event {
    Kernel(Result<Vec<KernelEvent>, crate::edge::rtnl::RtnlError>),
    /// A DHCP client's event on an interface.
    Dhcp {
        ifindex: u32,
        /// Boxed: a lease is large and the channel keeps a slot per event.
        kind: Box<DhcpEventKind>,
    },
    Bus(BusEvent),
    Signal(i32),
    /// A session policy file changed.
    Policies,
    /// A provisioning file (`<state-dir>/*.config`) changed.
    Provisioning,
    /// The SNTP client's event (boxed: a measurement is large).
    Sntp(Box<crate::time::task::SntpEvent>),
    /// An online checker's verdict on the service of an interface.
    Online {
        ifindex: u32,
        ev: crate::online::Event,
    },
    /// wpa_supplicant's view of a radio, or an agent's answer.
    Wifi(wifi::WifiEvent),
    Cellular(cellular::CellEvent),
    /// The tethering DHCP server's bound clients (MACs).
    TetherClients(Vec<[u8; 6]>),
    /// A settings write of the saver thread is done (with its error).
    Saved {
        what: crate::core::model::Action,
        error: Option<String>,
    },
}

/// What the loop waits for besides the event channel.
enum Due {
    Counters,
    LeaseExpiry,
    PolicyReload,
    SaveRetry,
    /// A held Connect/Scan reply's deadline.
    Held,
    /// A failed WiFi favourite may be auto-connected again.
    WifiRetry,
}

/// Events from the D-Bus task.
pub enum BusEvent {
    Connected(crate::dbus::Connection),
    Call(zbus::Message),
    /// A client left the bus: its sessions die with it.
    NameGone(String),
    Lost,
}

/// Runs `pathman daemon ARGS`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let opts = match options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pathman daemon: {e}\n{}", options::USAGE);
            return 2;
        }
    };
    if opts.help {
        println!("{}", options::USAGE);
        return 0;
    }
    if opts.version {
        println!("pathman {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    logging::init(opts.debug.as_deref());
    // Before anything touches the kernel: one pathman per network namespace.
    let _instance = match instance::Instance::claim(&opts.run_dir) {
        Ok(i) => i,
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    let signals = match signals::Signals::block() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot set up signal handling: {e}");
            return 1;
        }
    };
    // The executor lives as long as the process; leaking it gives the
    // 'static lifetime spawned local tasks need without an Rc dance.
    let ex: &'static LocalExecutor<'static> = Box::leak(Box::new(LocalExecutor::new()));
    // The loop's future is large (it holds every awaited step); on the heap it
    // does not inflate the main thread's stack.
    smol::block_on(ex.run(Box::pin(run(ex, opts, signals))))
}

mod signals {
    //! SIGTERM/SIGINT/SIGHUP (stop) and SIGUSR1 (debug dump) through a
    //! signalfd, so they arrive as events.
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use smol::Async;

    /// A signalfd for the signals that stop the daemon.
    pub struct Signals(Async<SignalFd>);

    impl Signals {
        /// Blocks the signals and opens the fd (before any thread exists, so
        /// every later thread inherits the mask).
        pub fn block() -> nix::Result<Signals> {
            let mut set = SigSet::empty();
            set.add(Signal::SIGTERM);
            set.add(Signal::SIGINT);
            set.add(Signal::SIGHUP);
            set.add(Signal::SIGUSR1);
            set.thread_block()?;
            let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
            Async::new(fd)
                .map(Signals)
                .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        }

        /// Waits for the next signal number.
        pub async fn next(&self) -> i32 {
            // read_signal says "nothing yet" with Ok(None); the reactor waits
            // only on WouldBlock.
            let read = |fd: &SignalFd| match fd.read_signal() {
                Ok(Some(info)) => Ok(info.ssi_signo as i32),
                Ok(None) => Err(std::io::ErrorKind::WouldBlock.into()),
                Err(e) => Err(std::io::Error::from(e)),
            };
            match self.0.read_with(read).await {
                Ok(signo) => signo,
                Err(e) => {
                    log::error!("signalfd: {e}");
                    libc::SIGTERM
                }
            }
        }
    }
}

async fn run(
    ex: &'static LocalExecutor<'static>,
    opts: options::Options,
    signals: signals::Signals,
) -> i32 {
    // `-c` given (a path other than the default) must exist; the default may not.
    let (conf, board, _warnings) =
        match crate::config::load(opts.config.as_deref(), opts.board.as_deref()) {
            Ok(loaded) => loaded,
            Err(e) => {
                log::error!("{e}");
                return 1;
            }
        };
    let store = Store::new(opts.state_dir.clone());
    let (global, _warnings) = store.load_global();
    let powered: Vec<_> = Technology::ALL
        .into_iter()
        .map(|t| (t, global.powered(t)))
        .collect();
    let mut preferred = heapless::Vec::new();
    for t in &conf.preferred_technologies {
        let _ = preferred.push(*t);
    }
    let settings = ModelSettings {
        multipath_default: opts.mpath_routing || conf.multipath_routing,
        preferred,
        rule_priority_base: conf.rule_priority_base,
        online_check: conf.online_check.mode != crate::config::main_conf::OnlineCheckMode::None,
        time_sync: conf.time_sync,
        auto_connect_roaming: conf.auto_connect_roaming,
        metered_cellular: conf.metered_cellular,
    };
    if !conf.time_sync {
        log::info!("clock: EnableTimeSync=false, no SNTP (another daemon keeps time)");
    }
    let mut model = Model::new(settings, global.offline_mode, &powered);
    model.clock.time_updates = global.time_updates;
    model.clock.timezone_updates = global.timezone_updates;
    model.clock.timeservers = global.timeservers.clone();
    model.clock.fallback = conf.fallback_timeservers.clone();
    model.tether.bridge_name = conf.tethering_bridge.clone();
    model.tether.lease_secs = conf.tethering_lease_secs;
    model.tether.fast_path = conf.tethering_fast_path;
    model.allow_tethering(&conf.tethering_technologies);
    for t in Technology::ALL {
        let mut ts =
            global.tether[Technology::ALL.iter().position(|x| *x == t).unwrap_or(0)].clone();
        // ConnMan: tethering comes back after a restart only in persistent mode.
        ts.enabled &= conf.persistent_tethering;
        model.load_tether_settings(t, ts);
    }
    model.clock.timezone =
        crate::edge::clock::timezone(&conf.localtime, &conf.zoneinfo_dir).unwrap_or_default();
    let time = TimeSettings {
        set_clock: conf.set_clock && !opts.no_set_clock && crate::edge::clock::may_set_clock(),
        localtime: conf.localtime.clone(),
        zoneinfo: conf.zoneinfo_dir.clone(),
        floor_file: crate::edge::clock::floor_file(&opts.state_dir),
    };
    if !time.set_clock {
        log::info!("clock: measuring only, the system clock is not set");
    } else {
        time.keep_floor();
    }
    let policy_dir = policies::dir(&opts.state_dir);
    model.policies = policies::load(&policy_dir);
    let policy_watch = policies::Watch::new(&policy_dir);
    let state_dir = opts.state_dir.clone();
    model.provisioned = provisioning::load(&state_dir);
    let provision_watch = policies::Watch::for_suffix(&state_dir, Some(".config"));
    let resolv_path = conf.resolv_conf.path(&opts.run_dir);
    let default_mptcp_link = conf.default_mptcp_link;

    // Subscribe before dumping so no change falls between dump and events.
    let events = match Events::open() {
        Ok(e) => e,
        Err(e) => {
            log::error!("rtnetlink events: {e}");
            return 1;
        }
    };
    let rtnl = match Rtnl::open() {
        Ok(r) => r,
        Err(e) => {
            log::error!("rtnetlink: {e}");
            return 1;
        }
    };
    let mptcp = match Mptcp::open().await {
        Ok(m) => m,
        Err(e) => {
            log::warn!("mptcp: path manager not usable, no endpoints will be managed: {e}");
            None
        }
    };
    let nft = match crate::edge::nft::open() {
        Ok(n) => Some(n),
        Err(e) => {
            log::warn!("nftables: not usable, sessions will not be marked: {e}");
            None
        }
    };
    let flags = conf.mptcp_endpoint_flags;
    let mptcp_extra = EndpointFlags::NONE
        .with(EndpointFlags::SIGNAL, flags.signal)
        .with(EndpointFlags::FULLMESH, flags.fullmesh);
    let (tx, rx) = events::channel();
    // Signals of wpa_supplicant, from the bus task to the supplicant task.
    let (wifi_sig_tx, wifi_signals) = smol::channel::bounded(crate::caps::WIFI_SIGNAL_QUEUE);
    // Signals of oFono, from the bus task to the oFono task.
    let (ofono_sig_tx, ofono_signals) = smol::channel::bounded(crate::caps::OFONO_SIGNAL_QUEUE);
    let peers = Peers {
        wifi: wifi_sig_tx,
        ofono: ofono_sig_tx,
    };
    ex.spawn(bus_task(ex, tx.clone(), peers)).detach();
    ex.spawn(events::kernel_task(events, tx.clone())).detach();
    ex.spawn(events::signal_task(signals, tx.clone())).detach();
    if let Some(w) = policy_watch {
        ex.spawn(events::policy_task(w, tx.clone(), || Event::Policies))
            .detach();
    }
    if let Some(w) = provision_watch {
        ex.spawn(events::policy_task(w, tx.clone(), || Event::Provisioning))
            .detach();
    }

    // Boxed: the daemon's state is large and the loop's future lives on the stack.
    let saver = saver::Saver::start(tx.raw());
    let mut d = Box::new(Daemon {
        ex,
        model,
        kernel: NetState::default(),
        rtnl,
        devices: Devices::new(&opts, &conf, board),
        tasks: tasks::Tasks::default(),
        ipv6: Vec::new(),
        store,
        default_mptcp_link,
        resolv_path,
        resolv_written: None,
        bus: None,
        access: Access::new(conf.admin_group.clone()),
        snapshot: Snapshot::default(),
        events: tx,
        dhcp_detection: if conf.address_conflict_detection {
            crate::dhcp::acd::ConflictDetection::On
        } else {
            crate::dhcp::acd::ConflictDetection::Off
        },
        mptcp,
        mptcp_extra,
        mptcp_manage_limits: conf.mptcp_manage_limits,
        endpoints_applied: None,
        endpoints_missing: Vec::new(),
        limits_applied: None,
        nft,
        ruleset_applied: None,
        offload_refused: None,
        counters: counters::Counters::default(),
        run_dir: opts.run_dir.clone(),
        adopted: Vec::new(),
        time,
        clock_failure: None,
        online_conf: conf.online_check.clone(),
        unsaved: Vec::new(),
        saves_failing: false,
        saver,
        leases_to_save: Vec::new(),
        save_retry_at: None,
        wifi: wifi::Wifi::default(),
        wifi_signals,
        cellular: cellular::Cellular::default(),
        ofono_signals,
        tether: tether::TetherEdge::new(&opts.run_dir),
    });
    if let Err(e) = d.resync().await {
        log::error!("initial kernel dump failed: {e}");
        return 1;
    }
    log::info!("pathman {} started", env!("CARGO_PKG_VERSION"));
    d.say_absent_devices();
    d.settle().await;

    let mut deferred = None;
    let mut policy_reload_at: Option<std::time::Instant> = None;
    loop {
        let due = [
            (d.counters.next_due(), Due::Counters),
            (d.next_adopted_expiry(), Due::LeaseExpiry),
            (policy_reload_at, Due::PolicyReload),
            (d.save_retry_at, Due::SaveRetry),
            (d.next_held_deadline(), Due::Held),
            (d.next_wifi_retry(), Due::WifiRetry),
        ]
        .into_iter()
        .filter_map(|(t, what)| t.map(|t| (t, what)))
        .min_by_key(|(t, _)| *t);
        let next = async { rx.recv().await.ok() };
        let timer = async {
            match &due {
                Some((t, _)) => {
                    smol::Timer::at(*t).await;
                }
                None => std::future::pending::<()>().await,
            }
            None
        };
        let event = match smol::future::or(async { Some(next.await) }, timer).await {
            Some(Some(ev)) => ev,
            // Every sender is gone: nothing can happen any more.
            Some(None) => return 0,
            None => {
                match due.map(|(_, what)| what) {
                    Some(Due::Counters) => {
                        let conn = d.bus.clone();
                        d.counters
                            .report(conn.as_ref(), &d.model, std::time::Instant::now())
                            .await;
                        continue;
                    }
                    Some(Due::LeaseExpiry) => d.expire_adopted(std::time::Instant::now()),
                    Some(Due::PolicyReload) => {
                        policy_reload_at = None;
                        d.model.policies = policies::load(&policy_dir);
                    }
                    Some(Due::SaveRetry) => d.retry_saves().await,
                    Some(Due::WifiRetry) => d.wifi_retries_due(std::time::Instant::now()),
                    Some(Due::Held) | None => {}
                }
                d.settle().await;
                d.finish_held().await;
                continue;
            }
        };
        match event {
            Event::Kernel(Ok(batch)) => {
                let mut resync = false;
                for ev in batch {
                    resync |= matches!(ev, KernelEvent::Overrun);
                    d.on_kernel(ev);
                }
                if resync {
                    log::warn!("rtnetlink events were lost; re-reading the kernel state");
                    if let Err(e) = d.resync().await {
                        log::error!("kernel dump failed: {e}");
                    }
                }
            }
            Event::Kernel(Err(e)) => log::warn!("rtnetlink events: {e}"),
            Event::Dhcp { ifindex, kind } => d.on_dhcp(ifindex, *kind),
            Event::Sntp(ev) => d.on_sntp(*ev),
            Event::Online { ifindex, ev } => d.on_online(ifindex, ev),
            Event::Wifi(ev) => d.on_wifi(ev),
            Event::Cellular(ev) => d.on_cellular(ev),
            Event::TetherClients(macs) => d.model.tether_clients(macs),
            Event::Saved { what, error } => d.saved(what, error),
            Event::Bus(BusEvent::Connected(conn)) => {
                d.snapshot = Snapshot::default();
                d.start_wifi(&conn);
                d.start_cellular(&conn);
                d.bus = Some(conn);
            }
            Event::Bus(BusEvent::Lost) => {
                d.stop_wifi();
                d.stop_cellular();
                d.bus = None;
            }
            Event::Bus(BusEvent::NameGone(name)) => {
                crate::core::session::drop_owner(&mut d.model, &name);
                d.model.drop_client(&name);
                d.access.forget(&name);
            }
            Event::Provisioning => d.model.set_provisioned(provisioning::load(&state_dir)),
            Event::Policies => {
                // Let an editor finish writing the other files of a batch.
                policy_reload_at =
                    Some(std::time::Instant::now() + std::time::Duration::from_millis(50));
                continue;
            }
            Event::Bus(BusEvent::Call(msg)) => {
                if let Some(conn) = d.bus.clone() {
                    deferred = server::handle(&conn, &mut d.model, &mut d.access, &msg).await;
                }
            }
            Event::Signal(libc::SIGUSR1) => d.dump().await,
            Event::Signal(sig) => {
                log::info!("signal {sig}: removing what pathman installed and exiting");
                d.shutdown().await;
                return 0;
            }
        }
        d.settle().await;
        if let (Some(def), Some(conn)) = (deferred.take(), d.bus.clone()) {
            if matches!(
                def.pending,
                crate::dbus::request::Pending::Connect(_) | crate::dbus::request::Pending::Scan(_)
            ) {
                d.hold(def);
            } else if def.pending == crate::dbus::request::Pending::State {
                let text = d.state_text().await;
                server::finish_text(&conn, def, &text).await;
            } else {
                let failure = d.pending_failure(&def.pending);
                server::finish(&conn, def, failure).await;
            }
        }
        d.finish_held().await;
        // A burst of queued events must not starve the other tasks (the bus
        // connection claiming net.connman at start, the protocol tasks).
        smol::future::yield_now().await;
    }
}

/// Connects to the system bus, owns `net.connman`, and forwards method calls;
/// reconnects when the bus goes away, saying once what it waits for.
async fn bus_task(ex: &'static LocalExecutor<'static>, tx: EventTx, peers: Peers) {
    let mut delay_ms = 100;
    let mut said_waiting = false;
    loop {
        let (dropped_tx, dropped_rx) = smol::channel::bounded(crate::caps::DBUS_OVERSIZED_QUEUE);
        match crate::dbus::bus::connect_system_reporting(Some(dropped_tx)).await {
            Ok(conn) => {
                said_waiting = false;
                let ticker = crate::dbus::bus::spawn_ticker(ex, &conn);
                let stream = conn.stream();
                // The signals pathman's modules listen to (connections
                // leaving: sessions, agents and counters die with them).
                crate::dbus::client::subscribe(&conn).await;
                match conn.request_name(crate::dbus::names::BUS_NAME).await {
                    Ok(()) => {
                        log::info!(
                            "dbus: serving {} on the system bus",
                            crate::dbus::names::BUS_NAME
                        );
                        delay_ms = 100;
                        if !tx.send(Event::Bus(BusEvent::Connected(conn.clone()))).await {
                            return;
                        }
                        if !forward(&conn, stream, &dropped_rx, &tx, &peers).await {
                            return;
                        }
                        log::warn!("dbus: connection to the system bus lost; reconnecting");
                        let _ = tx.send(Event::Bus(BusEvent::Lost)).await;
                    }
                    Err(e) => log::warn!(
                        "dbus: cannot own {}: {e}; retrying",
                        crate::dbus::names::BUS_NAME
                    ),
                }
                drop(ticker);
            }
            Err(e) => {
                if !said_waiting {
                    log::warn!(
                        "dbus: system bus not reachable ({e}); pathman works without it and connects when it appears"
                    );
                    said_waiting = true;
                } else {
                    log::debug!("dbus: system bus not reachable: {e}");
                }
            }
        }
        smol::Timer::after(std::time::Duration::from_millis(delay_ms)).await;
        delay_ms = (delay_ms * 2).min(5000);
    }
}

/// Forwards method calls and clients leaving to the loop, and answers calls
/// the socket dropped for their size; returns false when the loop is gone,
/// true when the connection ended.
async fn forward(
    conn: &crate::dbus::Connection,
    mut stream: crate::dbus::MessageStream,
    dropped: &smol::channel::Receiver<crate::dbus::bus::Dropped>,
    tx: &EventTx,
    peers: &Peers,
) -> bool {
    enum Next {
        Msg(Option<zbus::Message>),
        Dropped(crate::dbus::bus::Dropped),
    }
    loop {
        let next = smol::future::or(async { Next::Msg(stream.next().await) }, async {
            match dropped.recv().await {
                Ok(d) => Next::Dropped(d),
                Err(_) => std::future::pending().await,
            }
        })
        .await;
        match next {
            Next::Msg(None) => return true,
            Next::Msg(Some(m)) if m.message_type() == zbus::message::Type::MethodCall => {
                if !tx.send(Event::Bus(BusEvent::Call(m))).await {
                    return false;
                }
            }
            Next::Msg(Some(m)) => match crate::dbus::client::route(&m) {
                Some(crate::dbus::client::Subscriber::Owners) => {
                    match crate::dbus::client::owner_change(&m) {
                        Some((name, _)) if name == crate::dbus::wpa::NAME => {
                            to_peer(&peers.wifi, "wifi", m.clone())
                        }
                        Some((name, _)) if name == crate::dbus::ofono::NAME => {
                            to_peer(&peers.ofono, "cellular", m.clone())
                        }
                        _ => {}
                    }
                    if let Some(name) = crate::dbus::client::gone_connection(&m) {
                        if !tx.send(Event::Bus(BusEvent::NameGone(name))).await {
                            return false;
                        }
                    }
                }
                Some(crate::dbus::client::Subscriber::Supplicant) => {
                    to_peer(&peers.wifi, "wifi", m)
                }
                Some(crate::dbus::client::Subscriber::Ofono) => {
                    to_peer(&peers.ofono, "cellular", m)
                }
                None => {}
            },
            Next::Dropped(d) => server::refuse_oversized(conn, &d).await,
        }
    }
}

/// The client tasks' signal queues (the bus task routes to them).
struct Peers {
    wifi: smol::channel::Sender<zbus::Message>,
    ofono: smol::channel::Sender<zbus::Message>,
}

/// Hands a peer daemon's signal to its task; a full queue drops it with a
/// log line (the task re-reads the peer's state on the next change).
fn to_peer(q: &smol::channel::Sender<zbus::Message>, what: &str, m: zbus::Message) {
    if let Err(smol::channel::TrySendError::Full(_)) = q.try_send(m) {
        log::warn!(
            "{what}: {} signals queued (caps::WIFI_SIGNAL_QUEUE / OFONO_SIGNAL_QUEUE), one dropped",
            q.capacity().unwrap_or(0)
        );
    }
}

/// Everything the loop owns.
struct Daemon {
    ex: &'static LocalExecutor<'static>,
    model: Model,
    /// What pathman owns in the kernel, as far as it knows.
    kernel: NetState,
    rtnl: Rtnl,
    devices: Devices,
    /// The protocol tasks that run, supervised against the plan.
    tasks: tasks::Tasks,
    /// The kernel's IPv6 view of managed interfaces (SLAAC results).
    ipv6: Vec<devices::Ipv6View>,
    store: Store,
    /// MultipathTcpLink of services without a saved setting.
    default_mptcp_link: MptcpLink,
    /// `None` when main.conf disables resolv.conf (`/dev/null`).
    resolv_path: Option<PathBuf>,
    resolv_written: Option<String>,
    bus: Option<crate::dbus::Connection>,
    access: Access,
    snapshot: Snapshot,
    /// The event channel, for tasks the supervisor starts.
    events: EventTx,
    /// main.conf AddressConflictDetection, for every DHCP client started.
    dhcp_detection: crate::dhcp::acd::ConflictDetection,
    /// The MPTCP path manager; `None` when the kernel has none (or it is off).
    mptcp: Option<Mptcp>,
    /// main.conf MptcpEndpointFlags, added to every endpoint.
    mptcp_extra: EndpointFlags,
    mptcp_manage_limits: bool,
    /// The endpoints last planned; `None` forces a fresh look at the kernel.
    endpoints_applied: Option<Vec<DesiredEndpoint>>,
    /// Wanted endpoints the kernel does not have after the last change
    /// (endpoint cap reached, refused): (ifindex, address).
    endpoints_missing: Vec<(u32, std::net::IpAddr)>,
    limits_applied: Option<Limits>,
    /// nftables (session marks and SNAT); `None` when the kernel has none.
    nft: Option<crate::edge::nft::Nft>,
    /// The ruleset last applied; `None` forces a replace (start: removes what
    /// a crashed pathman left).
    ruleset_applied: Option<crate::core::firewall::Ruleset>,
    /// The flowtable devices the kernel refused last (see `apply_firewall`).
    offload_refused: Option<Vec<String>>,
    /// Usage counter baselines and reports.
    counters: counters::Counters,
    /// `--run-dir`: lease files live here.
    run_dir: PathBuf,
    /// DHCP leases taken over from a previous pathman, by ifindex, with
    /// when each expires unless DHCP confirms it first.
    adopted: Vec<(u32, Option<std::time::Instant>)>,
    /// How the clock is kept.
    time: TimeSettings,
    /// Why the last Clock.Timezone/Time request failed (for its held reply).
    clock_failure: Option<String>,
    /// main.conf's online check settings, for every checker started.
    online_conf: crate::config::main_conf::OnlineCheckConf,
    /// Saves that failed (read-only or full state dir), retried later.
    unsaved: Vec<crate::core::model::Action>,
    /// A save failed and has not succeeded since.
    saves_failing: bool,
    saver: saver::Saver,
    save_retry_at: Option<std::time::Instant>,
    /// Leases bound in this event, written to the run dir at the end of
    /// the settle (after the kernel and the bus).
    leases_to_save: Vec<(
        u32,
        crate::core::model::DhcpConfig,
        Option<std::time::Instant>,
    )>,
    /// WiFi: the supplicant task's commands and the held replies.
    wifi: wifi::Wifi,
    /// wpa_supplicant's signals, for each new supplicant task.
    wifi_signals: smol::channel::Receiver<zbus::Message>,
    cellular: cellular::Cellular,
    ofono_signals: smol::channel::Receiver<zbus::Message>,
    /// Tethering's kernel side as applied (bridge, ports, forwarding).
    tether: tether::TetherEdge,
}

impl TimeSettings {
    /// Boards without an RTC boot in the past: never let the clock stay
    /// behind the last time pathman synchronised it.
    fn keep_floor(&self) {
        let Some(floor) = crate::edge::clock::read_floor(&self.floor_file) else {
            return;
        };
        let now = crate::edge::clock::ns_since_epoch(std::time::SystemTime::now()) / 1_000_000_000;
        if now < floor {
            log::info!(
                "clock: {now} is before the last synchronised time {floor}; setting it forward"
            );
            if let Err(e) = crate::edge::clock::set(floor.saturating_mul(1_000_000_000)) {
                log::warn!("clock: cannot set it forward: {e}");
            }
        }
    }
}

/// How pathman keeps the time.
struct TimeSettings {
    /// Set the system clock (main.conf SetClock, no --no-set-clock, CAP_SYS_TIME).
    set_clock: bool,
    /// The zoneinfo link and the zones.
    localtime: PathBuf,
    zoneinfo: PathBuf,
    /// The last synchronised time, for boards without an RTC.
    floor_file: PathBuf,
}
