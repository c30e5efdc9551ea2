//! WiFi's edge: the link to wpa_supplicant over D-Bus (a task that keeps a
//! mirror of the supplicant's interfaces and BSSes, sends the model a
//! [`RadioView`] whenever one changes, and carries out connects, scans and
//! disconnects), the agent's RequestInput calls, and the Connect/Scan
//! replies held until the radio has answered. Decoding is `dbus::wpa`'s,
//! every decision the model's (`core::model::wifi`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::Message;

use crate::caps;
use crate::core::model::{Agent, AgentAnswer, ConnectSpec, InputRequest};
use crate::core::tech::wifi::{LinkState, RadioView, ScanBackoff};
use crate::core::tether::ApSpec;
use crate::core::types::{IfName, ServiceId, Technology};
use crate::dbus::client::{call, Args};
use crate::dbus::request::CallError;
use crate::dbus::server::Deferred;
use crate::dbus::wpa::{self, Props};

use super::events::EventTx;
use super::{Daemon, Event};

/// What the loop asks of the supplicant task.
#[derive(Debug)]
pub enum Cmd {
    /// The radios pathman manages now (declared: the task creates and
    /// removes supplicant interfaces to match).
    Radios(Vec<(u32, IfName)>),
    Scan(u32),
    Connect(u32, Box<ConnectSpec>),
    Disconnect(u32),
    /// The access point a radio must run (tethering), or none (declared:
    /// the task makes the supplicant's interface, with the bridge, and the
    /// AP network to match).
    Ap(u32, Option<Box<ApSpec>>),
}

/// What the supplicant task (or an agent call) tells the loop.
#[derive(Debug)]
pub enum WifiEvent {
    Radio {
        ifindex: u32,
        view: Box<RadioView>,
    },
    /// The supplicant (or its interface for the radio) is gone.
    Lost {
        ifindex: u32,
    },
    ScanDone {
        ifindex: u32,
    },
    /// The supplicant refused the connect itself (AddNetwork/SelectNetwork).
    ConnectFailed {
        ifindex: u32,
        why: String,
    },
    Agent {
        service: ServiceId,
        answer: AgentAnswer,
    },
    /// The agent answered ReportError (Retry or not).
    Reported {
        service: ServiceId,
        retry: bool,
    },
    /// The radio's access point runs with these settings (None: it does not).
    Ap {
        ifindex: u32,
        up: Option<Box<ApSpec>>,
    },
}

/// A reply that waits for the radio.
pub(super) struct Held {
    def: Deferred,
    what: HeldFor,
    deadline: Instant,
}

enum HeldFor {
    Connect(ServiceId),
    Scan(Vec<u32>),
}

/// How long a held Connect waits at most (ConnMan's connect timeout).
const CONNECT_REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a held Scan waits for the radios' ScanDone.
const SCAN_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The loop's side of WiFi.
#[derive(Default)]
pub(super) struct Wifi {
    cmds: super::bus_task::Commands<Cmd>,
    /// The radio list last sent to the task.
    radios_sent: Option<Vec<(u32, IfName)>>,
    held: Vec<Held>,
    /// Auto-connect retry waits of failed favourites (one per service).
    retries: Vec<(Instant, ServiceId)>,
    /// The access point last asked of the task.
    ap_sent: Option<(u32, ApSpec)>,
}

impl Daemon {
    /// The bus (re)connected: a new supplicant task on it.
    pub(super) fn start_wifi(&mut self, conn: &crate::dbus::Connection) {
        let rx = self.wifi.cmds.open();
        self.wifi.radios_sent = None;
        self.wifi.ap_sent = None;
        self.ex
            .spawn(supplicant_task(
                conn.clone(),
                rx,
                self.wifi_signals.clone(),
                self.events.clone(),
            ))
            .detach();
    }

    /// The bus is gone: the task ends with its command channel.
    pub(super) fn stop_wifi(&mut self) {
        self.wifi.cmds.close();
    }

    fn wifi_cmd(&mut self, cmd: Cmd) {
        self.wifi.cmds.send("wifi", cmd);
    }

    /// Declared state: the powered radios are the supplicant interfaces.
    pub(super) fn sync_radios(&mut self) {
        let on = self.model.tech_powered(Technology::Wifi) && !self.model.offline;
        let radios: Vec<(u32, IfName)> = self
            .model
            .devices
            .iter()
            .filter(|d| on && d.tech == Technology::Wifi)
            .map(|d| (d.ifindex, d.name.clone()))
            .collect();
        if self.wifi.cmds.is_open() && self.wifi.radios_sent.as_ref() != Some(&radios) {
            self.wifi.radios_sent = Some(radios.clone());
            self.wifi_cmd(Cmd::Radios(radios));
        }
        self.sync_ap();
    }

    /// Declared state: the access point tethering wants. Its supplicant
    /// interface names the bridge, so that comes first; a radio leaves the
    /// bridge before its AP stops or changes (the kernel refuses to make a
    /// bridged interface a station again).
    fn sync_ap(&mut self) {
        if !self.wifi.cmds.is_open() {
            return;
        }
        let want = self
            .model
            .tether_ap()
            .filter(|_| self.model.tether.bridge.is_some());
        if want == self.wifi.ap_sent {
            return;
        }
        if let Some((old, _)) = &self.wifi.ap_sent {
            let bridged = self
                .model
                .devices
                .iter()
                .any(|d| d.ifindex == *old && d.master.is_some());
            if bridged {
                log::debug!("wifi: access point change waits for the radio to leave the bridge");
                return;
            }
            if want.as_ref().map(|(i, _)| i) != Some(old) {
                self.wifi_cmd(Cmd::Ap(*old, None));
            }
        }
        self.wifi.ap_sent = want.clone();
        if let Some((ifindex, spec)) = want {
            self.wifi_cmd(Cmd::Ap(ifindex, Some(Box::new(spec))));
        }
    }

    /// Carries out a WiFi action of the model.
    pub(super) fn wifi_action(&mut self, action: crate::core::model::Action) {
        use crate::core::model::Action;
        match action {
            Action::WifiConnect { ifindex, spec } => self.wifi_cmd(Cmd::Connect(ifindex, spec)),
            Action::WifiDisconnect { ifindex } => self.wifi_cmd(Cmd::Disconnect(ifindex)),
            Action::WifiScan { ifindex } => self.wifi_cmd(Cmd::Scan(ifindex)),
            Action::RetryAfter { service, after } => {
                self.wifi.retries.retain(|(_, id)| *id != service);
                self.wifi.retries.push((Instant::now() + after, service));
            }
            Action::RequestInput(req) => match (self.bus.clone(), self.model.agent.clone()) {
                (Some(conn), Some(agent)) => {
                    let tx = self.events.clone();
                    self.ex.spawn(ask_agent(conn, agent, req, tx)).detach();
                }
                _ => self.on_wifi(WifiEvent::Agent {
                    service: req.service,
                    answer: AgentAnswer::Failed("no agent registered".into()),
                }),
            },
            Action::CancelInput { service } => {
                if let (Some(conn), Some(agent)) = (self.bus.clone(), self.model.agent.clone()) {
                    self.ex.spawn(cancel_agent(conn, agent, service)).detach();
                }
            }
            Action::ReportError { service, error } => {
                match (self.bus.clone(), self.model.agent.clone()) {
                    (Some(conn), Some(agent)) => {
                        let tx = self.events.clone();
                        self.ex
                            .spawn(report_error(conn, agent, service, error, tx))
                            .detach();
                    }
                    _ => self.model.agent_reported(&service, false),
                }
            }
            _ => {}
        }
    }

    /// An event of the supplicant task or of an agent call.
    pub(super) fn on_wifi(&mut self, ev: WifiEvent) {
        let mut configs = super::events::store_configs!(self);
        match ev {
            WifiEvent::Radio { ifindex, view } => {
                self.model.wifi_radio(ifindex, &view, &mut configs);
            }
            WifiEvent::Lost { ifindex } => self.model.wifi_radio_lost(ifindex),
            WifiEvent::ScanDone { ifindex } => {
                for h in &mut self.wifi.held {
                    if let HeldFor::Scan(radios) = &mut h.what {
                        radios.retain(|r| *r != ifindex);
                    }
                }
            }
            WifiEvent::ConnectFailed { ifindex, why } => {
                self.model.wifi_connect_failed(ifindex, &why)
            }
            WifiEvent::Agent { service, answer } => {
                self.model.agent_answered(&service, answer, &mut configs)
            }
            WifiEvent::Reported { service, retry } => self.model.agent_reported(&service, retry),
            WifiEvent::Ap { ifindex, up } => self.model.tether_ap_state(ifindex, up.map(|b| *b)),
        }
    }

    /// Holds a Connect or Scan reply until the radio has answered.
    pub(super) fn hold(&mut self, def: Deferred) {
        use crate::dbus::request::Pending;
        let now = Instant::now();
        let (what, deadline) = match &def.pending {
            Pending::Connect(id) => (
                HeldFor::Connect(ServiceId::try_from(id.as_str()).unwrap_or_default()),
                now + CONNECT_REPLY_TIMEOUT,
            ),
            Pending::Scan(radios) => (HeldFor::Scan(radios.clone()), now + SCAN_REPLY_TIMEOUT),
            _ => return,
        };
        self.wifi.held.push(Held {
            def,
            what,
            deadline,
        });
    }

    /// The earliest deadline of a held reply.
    pub(super) fn wifi_retries(&self) -> &[(Instant, ServiceId)] {
        &self.wifi.retries
    }

    pub(super) fn next_wifi_retry(&self) -> Option<Instant> {
        self.wifi.retries.iter().map(|(t, _)| *t).min()
    }

    /// Retry waits that are over: auto-connect may try those services again.
    pub(super) fn wifi_retries_due(&mut self, now: Instant) {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.wifi.retries)
            .into_iter()
            .partition(|(t, _)| *t <= now);
        self.wifi.retries = keep;
        for (_, id) in due {
            self.model.retry_due(&id);
        }
    }

    pub(super) fn next_held_deadline(&self) -> Option<Instant> {
        self.wifi.held.iter().map(|h| h.deadline).min()
    }

    /// Answers the held replies whose outcome is known (after each settle).
    pub(super) async fn finish_held(&mut self) {
        let outcomes = self.model.take_connect_results();
        if self.wifi.held.is_empty() {
            return;
        }
        let Some(conn) = self.bus.clone() else {
            return;
        };
        let now = Instant::now();
        let mut keep = Vec::new();
        for h in std::mem::take(&mut self.wifi.held) {
            let answer: Option<Option<CallError>> = match &h.what {
                HeldFor::Connect(id) => {
                    let failed = outcomes
                        .iter()
                        .filter(|o| o.service == *id)
                        .find_map(|o| o.result.clone().err());
                    let target = self.model.connect_target(id);
                    match (failed, self.model.service(target)) {
                        (Some(e), _) => Some(Some(e.into())),
                        (None, None) => {
                            Some(Some(CallError::new("Failed", format!("{id} is gone"))))
                        }
                        (None, Some(s)) if s.state.is_connected() => Some(None),
                        (None, Some(_)) if now >= h.deadline => Some(Some(CallError::new(
                            "OperationTimeout",
                            format!(
                                "{id} did not connect within {} s",
                                CONNECT_REPLY_TIMEOUT.as_secs()
                            ),
                        ))),
                        _ => None,
                    }
                }
                HeldFor::Scan(radios) if radios.is_empty() => Some(None),
                HeldFor::Scan(_) if now >= h.deadline => Some(Some(CallError::new(
                    "OperationTimeout",
                    "the radio did not finish scanning",
                ))),
                HeldFor::Scan(_) => None,
            };
            match answer {
                Some(failure) => crate::dbus::server::finish(&conn, h.def, failure).await,
                None => keep.push(h),
            }
        }
        self.wifi.held = keep;
    }
}

/// Asks the agent for the inputs of `req` and reports the answer.
async fn ask_agent(conn: crate::dbus::Connection, agent: Agent, req: InputRequest, tx: EventTx) {
    let service_path = format!("{}{}", crate::dbus::names::SERVICE_PATH_PREFIX, req.service);
    let mut fields: HashMap<&str, Value<'_>> = HashMap::new();
    if req.ask_name {
        // ConnMan's form: Name mandatory with SSID as its alternate.
        let mut name: HashMap<&str, Value<'_>> = HashMap::new();
        name.insert("Type", Value::from("string"));
        name.insert("Requirement", Value::from("mandatory"));
        name.insert("Alternates", Value::from(vec!["SSID"]));
        fields.insert("Name", Value::from(name));
        let mut ssid: HashMap<&str, Value<'_>> = HashMap::new();
        ssid.insert("Type", Value::from("ssid"));
        ssid.insert("Requirement", Value::from("alternate"));
        fields.insert("SSID", Value::from(ssid));
    }
    if let Some(kind) = req.passphrase_type {
        let mut pass: HashMap<&str, Value<'_>> = HashMap::new();
        pass.insert("Type", Value::from(kind));
        pass.insert("Requirement", Value::from("mandatory"));
        fields.insert("Passphrase", Value::from(pass));
    }
    if let (Some(prev), Some(kind)) = (&req.previous, req.passphrase_type) {
        let mut p: HashMap<&str, Value<'_>> = HashMap::new();
        p.insert("Type", Value::from(kind));
        p.insert("Requirement", Value::from("informational"));
        p.insert("Value", Value::from(prev.0.as_str()));
        fields.insert("PreviousPassphrase", Value::from(p));
    }
    let answer = match OwnedObjectPath::try_from(service_path) {
        Err(e) => AgentAnswer::Failed(format!("bad service path: {e}")),
        Ok(path) => {
            let body = Args::of((path, fields));
            let reply = crate::dbus::client::call_within(
                &conn,
                agent.owner.as_str(),
                agent.path.as_str(),
                "net.connman.Agent",
                "RequestInput",
                &body,
                Duration::from_secs(caps::AGENT_TIMEOUT_SECS),
            );
            // A timeout is a Failure.
            match reply.await {
                Ok(msg) => agent_reply(&msg, &req),
                Err(zbus::Error::MethodError(name, text, _)) => {
                    let text = text.unwrap_or_default();
                    if name.as_str() == "net.connman.Agent.Error.Canceled" {
                        AgentAnswer::Canceled(format!("{name}: {text}"))
                    } else {
                        AgentAnswer::Failed(format!("the agent answered {name}: {text}"))
                    }
                }
                Err(zbus::Error::Failure(_)) => {
                    // ConnMan tells an agent that took too long to drop its prompt.
                    cancel_agent(conn.clone(), agent.clone(), req.service.clone()).await;
                    AgentAnswer::Failed(format!(
                        "the agent did not answer within {} s",
                        caps::AGENT_TIMEOUT_SECS
                    ))
                }
                Err(e) => AgentAnswer::Failed(format!("agent call failed: {e}")),
            }
        }
    };
    let _ = tx
        .send(Event::Wifi(WifiEvent::Agent {
            service: req.service,
            answer,
        }))
        .await;
}

/// `net.connman.Agent.Cancel`: the request about `service` is withdrawn.
async fn cancel_agent(conn: crate::dbus::Connection, agent: Agent, service: ServiceId) {
    log::info!("agent: request for {service} canceled");
    crate::dbus::signals::call_client(
        &conn,
        agent.owner.as_str(),
        agent.path.as_str(),
        "net.connman.Agent",
        "Cancel",
        &(),
    )
    .await;
}

/// Tells the agent why connecting `service` failed; its Retry error asks
/// for another attempt.
async fn report_error(
    conn: crate::dbus::Connection,
    agent: Agent,
    service: ServiceId,
    error: &'static str,
    tx: EventTx,
) {
    let path = format!("{}{}", crate::dbus::names::SERVICE_PATH_PREFIX, service);
    let retry = match OwnedObjectPath::try_from(path) {
        Err(_) => false,
        Ok(path) => {
            let body = Args::of((path, error));
            let reply = crate::dbus::client::call_within(
                &conn,
                agent.owner.as_str(),
                agent.path.as_str(),
                "net.connman.Agent",
                "ReportError",
                &body,
                Duration::from_secs(caps::AGENT_TIMEOUT_SECS),
            );
            // A timeout is a Failure.
            match reply.await {
                Err(zbus::Error::MethodError(name, _, _)) => {
                    name.as_str() == "net.connman.Agent.Error.Retry"
                }
                _ => false,
            }
        }
    };
    let _ = tx
        .send(Event::Wifi(WifiEvent::Reported { service, retry }))
        .await;
}

/// What an agent's `a{sv}` answer to `req` gives.
fn agent_reply(msg: &Message, req: &InputRequest) -> AgentAnswer {
    let Ok(answer) = msg.body().deserialize::<HashMap<String, OwnedValue>>() else {
        return AgentAnswer::Failed("the agent's answer is not a dictionary (a{sv})".into());
    };
    let answer: HashMap<&str, &Value<'_>> =
        answer.iter().map(|(k, v)| (k.as_str(), &**v)).collect();
    crate::dbus::agent::agent_answer(&answer, req)
}

// ----- the supplicant task -------------------------------------------------

/// One radio as the task mirrors it.
struct Radio {
    ifindex: u32,
    ifname: IfName,
    /// The supplicant's interface object.
    path: Option<String>,
    view: RadioView,
    /// The view last sent to the loop.
    sent: Option<RadioView>,
    /// The network pathman added (one at a time).
    network: Option<String>,
    backoff: ScanBackoff,
    next_scan: Option<Instant>,
    assoc_deadline: Option<Instant>,
    /// A user scan waits for the supplicant's next ScanDone.
    scan_wanted: bool,
    /// BSSes beyond the cap were dropped (and said so).
    capped: bool,
    /// Its interface was removed under pathman: created again then.
    reattach_at: Option<Instant>,
    /// Removals since it last associated (each one doubles the wait).
    removals: u32,
    /// The access point it must run (tethering).
    ap: Option<ApSpec>,
    /// The bridge its supplicant interface was made with ("" for none).
    bridge: Option<String>,
    /// The access point its network is (None: a station network or none).
    ap_net: Option<ApSpec>,
    /// The access point last reported running.
    ap_sent: Option<ApSpec>,
}

impl Radio {
    /// The supplicant's interface for it is gone: nothing of it is known.
    fn forget(&mut self) {
        self.path = None;
        self.network = None;
        self.view = RadioView::default();
        self.sent = None;
        self.next_scan = None;
        self.assoc_deadline = None;
        self.bridge = None;
        self.ap_net = None;
    }
}

struct Task {
    conn: crate::dbus::Connection,
    tx: EventTx,
    /// The unique name that owns `fi.w1.wpa_supplicant1`.
    owner: Option<String>,
    radios: Vec<Radio>,
}

enum Next {
    Cmd(Option<Cmd>),
    Signal(Option<Message>),
    Timer,
}

/// Keeps the supplicant's interfaces in line with the radios and reports
/// what it sees; ends when the loop drops the command channel.
async fn supplicant_task(
    conn: crate::dbus::Connection,
    cmds: smol::channel::Receiver<Cmd>,
    signals: smol::channel::Receiver<Message>,
    tx: EventTx,
) {
    let mut t = Task {
        conn,
        tx,
        owner: None,
        radios: Vec::new(),
    };
    t.owner = crate::dbus::client::name_owner(&t.conn, wpa::NAME).await;
    match &t.owner {
        Some(o) => log::info!("wifi: wpa_supplicant is on the bus ({o})"),
        None => log::info!("wifi: wpa_supplicant is not on the bus yet; waiting for it"),
    }
    loop {
        let due = t
            .radios
            .iter()
            .flat_map(|r| [r.next_scan, r.assoc_deadline, r.reattach_at])
            .flatten()
            .min();
        let next = smol::future::or(
            async { Next::Cmd(cmds.recv().await.ok()) },
            smol::future::or(async { Next::Signal(signals.recv().await.ok()) }, async {
                match due {
                    Some(at) => {
                        smol::Timer::at(at).await;
                    }
                    None => std::future::pending::<()>().await,
                }
                Next::Timer
            }),
        )
        .await;
        match next {
            Next::Cmd(None) | Next::Signal(None) => return,
            Next::Cmd(Some(cmd)) => t.command(cmd).await,
            Next::Signal(Some(msg)) => t.signal(&msg).await,
            Next::Timer => t.timers().await,
        }
        if !t.report().await {
            return;
        }
    }
}

/// The bridge a radio's supplicant interface must name ("" for none).
fn bridge_of(ap: &Option<ApSpec>) -> String {
    ap.as_ref().map(|a| a.bridge.clone()).unwrap_or_default()
}

fn method_error(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

impl Task {
    /// Sends the loop the views that changed; false once the loop is gone.
    async fn report(&mut self) -> bool {
        for r in &mut self.radios {
            // While the radio scans, its BSSes arrive one signal each: the loop
            // hears of them at ScanDone, in one view (one settle, not one per
            // BSS), unless the association state moved meanwhile.
            let state_moved = r.sent.as_ref().map(|v| v.state) != Some(r.view.state);
            if r.view.scanning && !state_moved {
                continue;
            }
            // An access point's running state is its own event.
            let running = r
                .ap_net
                .clone()
                .filter(|_| r.view.state == LinkState::Completed);
            if running != r.ap_sent {
                r.ap_sent = running.clone();
                let ev = WifiEvent::Ap {
                    ifindex: r.ifindex,
                    up: running.map(Box::new),
                };
                if !self.tx.send(Event::Wifi(ev)).await {
                    return false;
                }
            }
            if r.ap.is_some() {
                continue;
            }
            if r.sent.as_ref() != Some(&r.view) && r.path.is_some() {
                r.sent = Some(r.view.clone());
                let ev = WifiEvent::Radio {
                    ifindex: r.ifindex,
                    view: Box::new(r.view.clone()),
                };
                if !self.tx.send(Event::Wifi(ev)).await {
                    return false;
                }
            }
        }
        true
    }

    async fn send(&self, ev: WifiEvent) {
        let _ = self.tx.send(Event::Wifi(ev)).await;
    }

    async fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Radios(list) => {
                let gone: Vec<usize> = (0..self.radios.len())
                    .filter(|&i| !list.iter().any(|(ix, _)| *ix == self.radios[i].ifindex))
                    .collect();
                for i in gone.into_iter().rev() {
                    let r = self.radios.remove(i);
                    if let Some(p) = &r.path {
                        self.remove_interface(p).await;
                    }
                    self.send(WifiEvent::Lost { ifindex: r.ifindex }).await;
                }
                for (ifindex, ifname) in list {
                    if self.radios.iter().any(|r| r.ifindex == ifindex) {
                        continue;
                    }
                    self.radios.push(Radio {
                        ifindex,
                        ifname,
                        path: None,
                        view: RadioView::default(),
                        sent: None,
                        network: None,
                        backoff: ScanBackoff::default(),
                        next_scan: None,
                        assoc_deadline: None,
                        scan_wanted: false,
                        capped: false,
                        reattach_at: None,
                        removals: 0,
                        ap: None,
                        bridge: None,
                        ap_net: None,
                        ap_sent: None,
                    });
                    let i = self.radios.len() - 1;
                    self.attach(i).await;
                }
            }
            Cmd::Scan(ifindex) => {
                if let Some(i) = self.index(ifindex) {
                    self.radios[i].scan_wanted = true;
                    self.radios[i].backoff.reset();
                    self.scan(i).await;
                } else {
                    self.send(WifiEvent::ScanDone { ifindex }).await;
                }
            }
            Cmd::Connect(ifindex, spec) => {
                let Some(i) = self.index(ifindex) else {
                    let why = "the radio is not managed by wpa_supplicant".to_string();
                    self.send(WifiEvent::ConnectFailed { ifindex, why }).await;
                    return;
                };
                if let Err(why) = self.connect(i, &spec).await {
                    self.send(WifiEvent::ConnectFailed { ifindex, why }).await;
                }
            }
            Cmd::Disconnect(ifindex) => {
                // An access point's network is not a station's to drop.
                if let Some(i) = self.index(ifindex).filter(|&i| self.radios[i].ap.is_none()) {
                    self.disconnect(i).await;
                }
            }
            Cmd::Ap(ifindex, spec) => {
                let Some(i) = self.index(ifindex) else {
                    log::warn!("wifi: no access point on radio {ifindex}: not managed (powered?)");
                    return;
                };
                self.radios[i].ap = spec.map(|b| *b);
                self.apply_ap(i).await;
            }
        }
    }

    /// Makes radio `i` what its `ap` says: an interface made with the
    /// bridge and the AP network, or a plain station interface again.
    async fn apply_ap(&mut self, i: usize) {
        let want_bridge = bridge_of(&self.radios[i].ap);
        let Some(path) = self.radios[i].path.clone() else {
            self.attach(i).await;
            return;
        };
        if self.radios[i].bridge.as_deref() != Some(want_bridge.as_str()) {
            // ConnMan's way: the interface is made again, naming the bridge
            // (or none) in CreateInterface.
            if let Some(net) = self.radios[i].network.take() {
                self.remove_network(&path, &net).await;
            }
            // A scan the radio still runs would keep the next one (which
            // wpa_supplicant makes before it starts an AP) busy for seconds.
            if self.radios[i].view.scanning {
                self.abort_scan(&path).await;
            }
            self.remove_interface(&path).await;
            self.radios[i].forget();
            self.attach(i).await;
            return;
        }
        match self.radios[i].ap.is_some() {
            true => self.start_ap(i).await,
            false => {
                if self.radios[i].ap_net.take().is_some() {
                    if let Some(net) = self.radios[i].network.take() {
                        self.remove_network(&path, &net).await;
                    }
                }
                self.scan(i).await;
            }
        }
    }

    /// Adds and selects the AP network radio `i` must run (once per setting).
    async fn start_ap(&mut self, i: usize) {
        let (Some(spec), Some(path)) = (self.radios[i].ap.clone(), self.radios[i].path.clone())
        else {
            return;
        };
        if self.radios[i].ap_net.as_ref() == Some(&spec) && self.radios[i].network.is_some() {
            return;
        }
        self.radios[i].assoc_deadline = None;
        if let Some(old) = self.radios[i].network.take() {
            self.remove_network(&path, &old).await;
        }
        self.radios[i].ap_net = None;
        let ifname = self.radios[i].ifname.to_string();
        if let Err(e) = self.add_and_select(i, &path, wpa::ap_args(&spec)).await {
            log::warn!("{ifname}: no access point: {e}");
            return;
        }
        log::info!(
            "{ifname}: access point {:?} starting on {} MHz ({}), bridge {}",
            spec.ssid,
            spec.freq,
            if spec.passphrase.is_some() {
                "WPA2-PSK"
            } else {
                "open"
            },
            spec.bridge
        );
        self.radios[i].ap_net = Some(spec);
    }

    fn index(&self, ifindex: u32) -> Option<usize> {
        self.radios.iter().position(|r| r.ifindex == ifindex)
    }

    /// Finds or creates the supplicant's interface for radio `i` and reads
    /// its state and BSSes; then scans.
    async fn attach(&mut self, i: usize) {
        if self.owner.is_none() {
            return;
        }
        let ifname = self.radios[i].ifname.to_string();
        let want_bridge = bridge_of(&self.radios[i].ap);
        let found = call(
            &self.conn,
            wpa::NAME,
            wpa::PATH,
            wpa::IFACE_ROOT,
            "GetInterface",
            &Args::of((ifname.as_str(),)),
        )
        .await;
        let mut existing = match found.and_then(|m| m.body().deserialize::<OwnedObjectPath>()) {
            Ok(p) => Some(p.as_str().to_string()),
            Err(e) if method_error(&e) == Some(wpa::ERR_INTERFACE_UNKNOWN) => None,
            Err(e) => {
                log::warn!("{ifname}: wpa_supplicant does not manage it: {e}");
                return;
            }
        };
        let mut props = None;
        // The bridge the interface names: the existing one's, or the one it is made with.
        let mut bridge = want_bridge.clone();
        if let Some(p) = existing.clone() {
            props = self.get_all(&p, wpa::IFACE_INTERFACE).await;
            bridge = props
                .as_ref()
                .and_then(|pr| pr.get("BridgeIfname"))
                .and_then(|v| crate::dbus::value::string(v))
                .unwrap_or_default();
            // An access point needs its bridge named; a station keeps what
            // it was given (a user's wpa_supplicant -b is not undone).
            if !want_bridge.is_empty() && bridge != want_bridge {
                log::info!(
                    "{ifname}: its supplicant interface has bridge {bridge:?}, not {want_bridge:?}: made again"
                );
                self.remove_interface(&p).await;
                existing = None;
                props = None;
                bridge = want_bridge.clone();
            }
        }
        let path = match existing {
            Some(p) => p,
            None => {
                let mut args: HashMap<&str, Value<'_>> = HashMap::new();
                args.insert("Ifname", Value::from(ifname.as_str()));
                args.insert("Driver", Value::from("nl80211,wext"));
                if !want_bridge.is_empty() {
                    args.insert("BridgeIfname", Value::from(want_bridge.as_str()));
                }
                let made = call(
                    &self.conn,
                    wpa::NAME,
                    wpa::PATH,
                    wpa::IFACE_ROOT,
                    "CreateInterface",
                    &Args::of((args,)),
                )
                .await
                .and_then(|m| m.body().deserialize::<OwnedObjectPath>());
                match made {
                    Ok(p) => p.as_str().to_string(),
                    Err(e) => {
                        log::warn!("{ifname}: wpa_supplicant does not manage it: {e}");
                        return;
                    }
                }
            }
        };
        log::info!("{ifname}: wpa_supplicant interface {path}");
        self.radios[i].path = Some(path.clone());
        self.radios[i].bridge = Some(bridge);
        if props.is_none() {
            props = self.get_all(&path, wpa::IFACE_INTERFACE).await;
        }
        let Some(props) = props else {
            return;
        };
        let list = wpa::update_interface(&mut self.radios[i].view, &props).unwrap_or_default();
        if self.radios[i].ap.is_some() {
            self.start_ap(i).await;
            return;
        }
        self.load_bsses(i, &list).await;
        self.scan(i).await;
    }

    async fn get_all(&self, path: &str, iface: &str) -> Option<Props> {
        let r = call(
            &self.conn,
            wpa::NAME,
            path,
            wpa::PROPERTIES,
            "GetAll",
            &Args::of((iface,)),
        )
        .await
        .and_then(|m| m.body().deserialize::<Props>());
        match r {
            Ok(p) => Some(p),
            Err(e) => {
                log::debug!("wifi: GetAll {iface} on {path}: {e}");
                None
            }
        }
    }

    /// Brings the BSS list of radio `i` in line with `list` (fetching the
    /// ones it does not know).
    async fn load_bsses(&mut self, i: usize, list: &[String]) {
        self.radios[i].view.bsses.retain(|b| list.contains(&b.path));
        for p in list.iter().take(caps::WIFI_MAX_BSS * 2) {
            if self.radios[i].view.bsses.iter().any(|b| b.path == *p) {
                continue;
            }
            if let Some(props) = self.get_all(p, wpa::IFACE_BSS).await {
                if let Some(b) = wpa::bss(p, &props) {
                    self.radios[i].view.bsses.push(b);
                }
            }
        }
        self.cap(i);
    }

    fn cap(&mut self, i: usize) {
        let dropped = wpa::cap_bsses(&mut self.radios[i].view.bsses);
        // Said once per crowd, not for every BSS of it.
        let said = std::mem::replace(&mut self.radios[i].capped, dropped > 0);
        if dropped > 0 && !said {
            log::warn!(
                "{}: {dropped} weakest BSSes ignored, more than {} (caps::WIFI_MAX_BSS)",
                self.radios[i].ifname,
                caps::WIFI_MAX_BSS
            );
        }
    }

    async fn scan(&mut self, i: usize) {
        let Some(path) = self.radios[i].path.clone() else {
            return;
        };
        if self.radios[i].ap.is_some() {
            // An access point does not scan.
            self.radios[i].next_scan = None;
            if std::mem::take(&mut self.radios[i].scan_wanted) {
                let ifindex = self.radios[i].ifindex;
                self.send(WifiEvent::ScanDone { ifindex }).await;
            }
            return;
        }
        let mut args: HashMap<&str, Value<'_>> = HashMap::new();
        args.insert("Type", Value::from("active"));
        let r = call(
            &self.conn,
            wpa::NAME,
            &path,
            wpa::IFACE_INTERFACE,
            "Scan",
            &Args::of((args,)),
        )
        .await;
        self.radios[i].next_scan = None;
        if let Err(e) = r {
            // Busy with a scan already: its ScanDone answers the user too.
            log::debug!("{}: scan not started: {e}", self.radios[i].ifname);
            if !self.radios[i].view.scanning {
                let backoff = self.radios[i].backoff.next_interval(false);
                self.radios[i].next_scan = Some(Instant::now() + backoff);
                if std::mem::take(&mut self.radios[i].scan_wanted) {
                    let ifindex = self.radios[i].ifindex;
                    self.send(WifiEvent::ScanDone { ifindex }).await;
                }
            }
        }
    }

    /// AddNetwork with `args` on radio `i`'s interface `path`, then
    /// SelectNetwork: the network it now runs (a station's or an AP's).
    async fn add_and_select(
        &mut self,
        i: usize,
        path: &str,
        args: HashMap<&'static str, Value<'static>>,
    ) -> Result<(), String> {
        let net = call(
            &self.conn,
            wpa::NAME,
            path,
            wpa::IFACE_INTERFACE,
            "AddNetwork",
            &Args::of((args,)),
        )
        .await
        .and_then(|m| m.body().deserialize::<OwnedObjectPath>())
        .map_err(|e| format!("wpa_supplicant refused the network: {e}"))?;
        self.radios[i].network = Some(net.as_str().to_string());
        call(
            &self.conn,
            wpa::NAME,
            path,
            wpa::IFACE_INTERFACE,
            "SelectNetwork",
            &Args::of((net,)),
        )
        .await
        .map_err(|e| format!("wpa_supplicant cannot select the network: {e}"))?;
        Ok(())
    }

    async fn connect(&mut self, i: usize, spec: &ConnectSpec) -> Result<(), String> {
        let Some(path) = self.radios[i].path.clone() else {
            return Err("the radio is not managed by wpa_supplicant".into());
        };
        if self.radios[i].ap.is_some() {
            return Err("the radio is tethering's access point".into());
        }
        if let Some(old) = self.radios[i].network.take() {
            self.remove_network(&path, &old).await;
        }
        self.add_and_select(i, &path, wpa::network_args(spec))
            .await?;
        self.radios[i].assoc_deadline =
            Some(Instant::now() + Duration::from_secs(caps::WIFI_ASSOC_TIMEOUT_SECS));
        Ok(())
    }

    async fn disconnect(&mut self, i: usize) {
        self.radios[i].assoc_deadline = None;
        let Some(path) = self.radios[i].path.clone() else {
            return;
        };
        if let Err(e) = call(
            &self.conn,
            wpa::NAME,
            &path,
            wpa::IFACE_INTERFACE,
            "Disconnect",
            &Args::NONE,
        )
        .await
        {
            log::debug!("{}: Disconnect: {e}", self.radios[i].ifname);
        }
        if let Some(net) = self.radios[i].network.take() {
            self.remove_network(&path, &net).await;
        }
    }

    async fn remove_network(&self, iface: &str, net: &str) {
        let Ok(p) = OwnedObjectPath::try_from(net.to_string()) else {
            return;
        };
        if let Err(e) = call(
            &self.conn,
            wpa::NAME,
            iface,
            wpa::IFACE_INTERFACE,
            "RemoveNetwork",
            &Args::of((p,)),
        )
        .await
        {
            log::debug!("wifi: RemoveNetwork {net}: {e}");
        }
    }

    async fn abort_scan(&self, path: &str) {
        if let Err(e) = call(
            &self.conn,
            wpa::NAME,
            path,
            wpa::IFACE_INTERFACE,
            "AbortScan",
            &Args::NONE,
        )
        .await
        {
            log::debug!("wifi: AbortScan on {path}: {e}");
        }
    }

    async fn remove_interface(&self, path: &str) {
        let Ok(p) = OwnedObjectPath::try_from(path.to_string()) else {
            return;
        };
        if let Err(e) = call(
            &self.conn,
            wpa::NAME,
            wpa::PATH,
            wpa::IFACE_ROOT,
            "RemoveInterface",
            &Args::of((p,)),
        )
        .await
        {
            log::debug!("wifi: RemoveInterface {path}: {e}");
        }
    }

    async fn timers(&mut self) {
        let now = Instant::now();
        for i in 0..self.radios.len() {
            if self.radios[i].reattach_at.is_some_and(|t| t <= now) {
                self.radios[i].reattach_at = None;
                self.attach(i).await;
            }
            if self.radios[i].assoc_deadline.is_some_and(|t| t <= now) {
                self.radios[i].assoc_deadline = None;
                let ifindex = self.radios[i].ifindex;
                let why = format!(
                    "not associated within {} s (state {})",
                    caps::WIFI_ASSOC_TIMEOUT_SECS,
                    self.radios[i].view.state.as_str()
                );
                self.disconnect(i).await;
                self.send(WifiEvent::ConnectFailed { ifindex, why }).await;
            }
            if self.radios[i].next_scan.is_some_and(|t| t <= now) {
                self.scan(i).await;
            }
        }
    }

    /// The radio whose interface object is `path` or holds it.
    fn radio_of(&self, path: &str) -> Option<usize> {
        self.radios.iter().position(|r| {
            r.path.as_deref().is_some_and(|p| {
                path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
            })
        })
    }

    async fn signal(&mut self, msg: &Message) {
        let h = msg.header();
        let member = h
            .member()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        let iface = h
            .interface()
            .map(|i| i.as_str().to_string())
            .unwrap_or_default();
        let path = h.path().map(|p| p.as_str().to_string()).unwrap_or_default();
        let sender = h.sender().map(|s| s.as_str().to_string());
        if iface == "org.freedesktop.DBus" && member == "NameOwnerChanged" {
            if let Some((name, new)) = crate::dbus::client::owner_change(msg) {
                if name == wpa::NAME {
                    self.owner_changed(new).await;
                }
            }
            return;
        }
        if sender.is_none() || sender != self.owner {
            return;
        }
        let Some(i) = self.radio_of(&path) else {
            if iface == wpa::IFACE_ROOT && member == "InterfaceRemoved" {
                let gone = msg.body().deserialize::<OwnedObjectPath>().ok();
                log::debug!(
                    "wifi: interface removed: {}",
                    gone.as_ref().map_or("?", |p| p.as_str())
                );
                // One of pathman's radios lost its supplicant interface (the
                // supplicant dropped it): its services go until it is back.
                if let Some(r) = self.radios.iter_mut().find(|r| {
                    gone.as_ref()
                        .is_some_and(|g| r.path.as_deref() == Some(g.as_str()))
                }) {
                    // Declared state: a powered radio has an interface. Made
                    // again after 1 s, doubling to a minute if something keeps
                    // removing it.
                    r.removals = r.removals.saturating_add(1);
                    let wait = Duration::from_secs(
                        (1u64 << r.removals.min(7).saturating_sub(1))
                            .min(caps::WIFI_REATTACH_MAX_SECS),
                    );
                    log::warn!(
                        "{}: wpa_supplicant removed its interface; creating it again in {} s",
                        r.ifname,
                        wait.as_secs()
                    );
                    r.forget();
                    r.reattach_at = Some(Instant::now() + wait);
                    let ifindex = r.ifindex;
                    self.send(WifiEvent::Lost { ifindex }).await;
                }
            }
            return;
        };
        let is_iface = self.radios[i].path.as_deref() == Some(path.as_str());
        let was = self.radios[i].view.state;
        match (iface.as_str(), member.as_str()) {
            (wpa::PROPERTIES, "PropertiesChanged") => {
                if let Ok((on, props, _)) = msg.body().deserialize::<(String, Props, Vec<String>)>()
                {
                    self.changed(i, &path, is_iface, &on, &props).await;
                }
            }
            (wpa::IFACE_INTERFACE | wpa::IFACE_BSS, "PropertiesChanged") => {
                if let Ok(props) = msg.body().deserialize::<Props>() {
                    self.changed(i, &path, is_iface, &iface, &props).await;
                }
            }
            (wpa::IFACE_INTERFACE, "BSSAdded") => {
                if let Ok((p, props)) = msg.body().deserialize::<(OwnedObjectPath, Props)>() {
                    let p = p.as_str().to_string();
                    let r = &mut self.radios[i];
                    r.view.bsses.retain(|b| b.path != p);
                    match wpa::bss(&p, &props) {
                        Some(b) => r.view.bsses.push(b),
                        // BSSAdded may carry no properties: ask.
                        None => {
                            if let Some(props) = self.get_all(&p, wpa::IFACE_BSS).await {
                                if let Some(b) = wpa::bss(&p, &props) {
                                    self.radios[i].view.bsses.push(b);
                                }
                            }
                        }
                    }
                    self.cap(i);
                }
            }
            (wpa::IFACE_INTERFACE, "BSSRemoved") => {
                if let Ok(p) = msg.body().deserialize::<OwnedObjectPath>() {
                    self.radios[i].view.bsses.retain(|b| b.path != p.as_str());
                }
            }
            (wpa::IFACE_INTERFACE, "ScanDone") => {
                let r = &mut self.radios[i];
                r.view.scanning = false;
                let connected = r.view.state == LinkState::Completed;
                r.next_scan = Some(Instant::now() + r.backoff.next_interval(connected));
                r.scan_wanted = false;
                let ifindex = r.ifindex;
                // The BSSes of the scan go to the loop before its end.
                let _ = self.report().await;
                self.send(WifiEvent::ScanDone { ifindex }).await;
            }
            _ => {}
        }
        let r = &mut self.radios[i];
        let now = r.view.state;
        if now == LinkState::Completed {
            r.assoc_deadline = None;
            r.removals = 0;
        }
        if was == LinkState::Completed && now != LinkState::Completed && !now.is_connecting() {
            // Lost the network: look for it again soon.
            r.backoff.reset();
            r.next_scan = Some(Instant::now() + r.backoff.next_interval(false));
        }
    }

    async fn changed(&mut self, i: usize, path: &str, is_iface: bool, on: &str, props: &Props) {
        if is_iface && on == wpa::IFACE_INTERFACE {
            let list = wpa::update_interface(&mut self.radios[i].view, props);
            if let Some(v) = props.get("Scanning").map(|v| &**v) {
                if let Value::Bool(s) = crate::dbus::value::inner(v) {
                    self.radios[i].view.scanning = *s;
                }
            }
            if let Some(list) = list {
                self.load_bsses(i, &list).await;
            }
        } else if !is_iface && on == wpa::IFACE_BSS {
            if let Some(b) = self.radios[i]
                .view
                .bsses
                .iter_mut()
                .find(|b| b.path == path)
            {
                wpa::update_bss(b, props);
            }
        }
    }

    async fn owner_changed(&mut self, new: String) {
        if new.is_empty() {
            if self.owner.take().is_some() {
                log::warn!("wifi: wpa_supplicant left the bus; its radios' services are gone");
            }
            for r in &mut self.radios {
                r.forget();
                let ifindex = r.ifindex;
                let _ = self.tx.send(Event::Wifi(WifiEvent::Lost { ifindex })).await;
            }
            return;
        }
        log::info!("wifi: wpa_supplicant is on the bus ({new})");
        self.owner = Some(new);
        for i in 0..self.radios.len() {
            self.radios[i].path = None;
            self.attach(i).await;
        }
    }
}
