//! Cellular's edge: the link to oFono over D-Bus. A task keeps a mirror of
//! oFono's modems (Modem, SimManager, NetworkRegistration,
//! ConnectionManager and its contexts), powers the hardware modems and
//! puts them online while the technology is on, sends the model a
//! [`ModemView`] whenever one changes, and activates or deactivates
//! contexts. Decoding is `dbus::ofono`'s, every decision the model's
//! (`core::model::cellular`).

use std::time::{Duration, Instant};

use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::Message;

use crate::caps;
use crate::core::tech::cellular::{Context, ModemView, Sim};
use crate::core::types::Technology;
use crate::dbus::client::{call, Args};
use crate::dbus::ofono::{self, Props};

use super::events::EventTx;
use super::{Daemon, Event};

/// What the loop asks of the oFono task.
#[derive(Debug)]
pub enum Cmd {
    /// The technology is on (modems online) or off (offline).
    Online(bool),
    Activate {
        modem: String,
        context: String,
        active: bool,
    },
}

/// What the oFono task tells the loop.
#[derive(Debug)]
pub enum CellEvent {
    Modem(Box<ModemView>),
    /// The modem (or oFono) is gone.
    Gone(String),
    ActivateFailed {
        context: String,
        why: String,
    },
}

/// The loop's side of cellular.
#[derive(Default)]
pub(super) struct Cellular {
    cmds: super::bus_task::Commands<Cmd>,
    online_sent: Option<bool>,
}

impl Daemon {
    /// The bus (re)connected: a new oFono task on it.
    pub(super) fn start_cellular(&mut self, conn: &crate::dbus::Connection) {
        let rx = self.cellular.cmds.open();
        self.cellular.online_sent = None;
        self.ex
            .spawn(ofono_task(
                self.ex,
                conn.clone(),
                rx,
                self.ofono_signals.clone(),
                self.events.clone(),
            ))
            .detach();
    }

    pub(super) fn stop_cellular(&mut self) {
        self.cellular.cmds.close();
    }

    fn cellular_cmd(&mut self, cmd: Cmd) {
        self.cellular.cmds.send("cellular", cmd);
    }

    /// Declared state: modems are online while the technology is on.
    pub(super) fn sync_modems(&mut self) {
        let on = self.model.tech_powered(Technology::Cellular) && !self.model.offline;
        if self.cellular.cmds.is_open() && self.cellular.online_sent != Some(on) {
            self.cellular.online_sent = Some(on);
            self.cellular_cmd(Cmd::Online(on));
        }
    }

    pub(super) fn cellular_action(&mut self, action: crate::core::model::Action) {
        if let crate::core::model::Action::CellularActivate {
            modem,
            context,
            active,
        } = action
        {
            self.cellular_cmd(Cmd::Activate {
                modem,
                context,
                active,
            });
        }
    }

    pub(super) fn on_cellular(&mut self, ev: CellEvent) {
        let mut configs = super::events::store_configs!(self);
        match ev {
            CellEvent::Modem(view) => self.model.cellular_modem(&view, &mut configs),
            CellEvent::Gone(path) => self.model.cellular_modem_gone(&path),
            CellEvent::ActivateFailed { context, why } => {
                self.model.cellular_activate_failed(&context, why)
            }
        }
    }
}

// ----- the oFono task --------------------------------------------------------

struct Modem {
    view: ModemView,
    /// The view last sent to the loop.
    sent: Option<ModemView>,
}

struct Task {
    /// Runs the context activations, which may take oFono up to 40 s, beside
    /// the task (its signals keep flowing meanwhile).
    ex: &'static smol::LocalExecutor<'static>,
    conn: crate::dbus::Connection,
    tx: EventTx,
    /// The unique name that owns `org.ofono`.
    owner: Option<String>,
    modems: Vec<Modem>,
    /// Modems should be online (the technology is on).
    online: bool,
    /// More modems than the cap were seen (said once).
    capped: bool,
    /// A modem was busy (InProgress) when asked to power up or go online:
    /// its declared state is applied again then.
    steer_at: Option<Instant>,
}

/// How long to wait before asking a busy modem again.
const STEER_RETRY: Duration = Duration::from_millis(500);

enum Next {
    Cmd(Option<Cmd>),
    Signal(Option<Message>),
    Timer,
}

async fn ofono_task(
    ex: &'static smol::LocalExecutor<'static>,
    conn: crate::dbus::Connection,
    cmds: smol::channel::Receiver<Cmd>,
    signals: smol::channel::Receiver<Message>,
    tx: EventTx,
) {
    let mut t = Task {
        ex,
        conn,
        tx,
        owner: None,
        modems: Vec::new(),
        online: false,
        capped: false,
        steer_at: None,
    };
    t.owner = crate::dbus::client::name_owner(&t.conn, ofono::NAME).await;
    match &t.owner {
        Some(o) => log::info!("cellular: oFono is on the bus ({o})"),
        None => log::info!("cellular: oFono is not on the bus; waiting for it"),
    }
    if t.owner.is_some() {
        t.load_modems().await;
    }
    loop {
        if !t.report().await {
            return;
        }
        let due = t.steer_at;
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
            Next::Timer => {
                t.steer_at = None;
                for i in 0..t.modems.len() {
                    t.steer(i).await;
                }
            }
        }
    }
}

/// `SetProperty(name, <value>)` on an oFono interface.
async fn set_property(
    conn: &crate::dbus::Connection,
    path: &str,
    iface: &str,
    name: &str,
    value: bool,
    timeout: Duration,
) -> Result<(), String> {
    let body = Args::of((name, Value::from(value)));
    let call = crate::dbus::client::call_within(
        conn,
        ofono::NAME,
        path,
        iface,
        "SetProperty",
        &body,
        timeout,
    );
    match call.await {
        Ok(_) => Ok(()),
        Err(zbus::Error::MethodError(name, text, _)) => Err(format!(
            "{}{}",
            name.as_str(),
            text.map(|t| format!(": {t}")).unwrap_or_default()
        )),
        Err(e) => Err(e.to_string()),
    }
}

impl Task {
    async fn report(&mut self) -> bool {
        for m in &mut self.modems {
            let was = m.sent.as_ref().map(|v| &v.sim);
            if let (Sim::Locked(code), true) = (&m.view.sim, was != Some(&m.view.sim)) {
                // Surfaced, never answered: a guessed PIN can lock the SIM for good.
                log::warn!(
                    "cellular: {}: the SIM waits for its {code} (oFono's SimManager.EnterPin); pathman does not enter it",
                    m.view.path
                );
            }
            if m.sent.as_ref() != Some(&m.view) {
                m.sent = Some(m.view.clone());
                let ev = CellEvent::Modem(Box::new(m.view.clone()));
                if !self.tx.send(Event::Cellular(ev)).await {
                    return false;
                }
            }
        }
        true
    }

    async fn send(&self, ev: CellEvent) {
        let _ = self.tx.send(Event::Cellular(ev)).await;
    }

    async fn get_properties(&self, path: &str, iface: &str) -> Option<Props> {
        let r = call(
            &self.conn,
            ofono::NAME,
            path,
            iface,
            "GetProperties",
            &Args::NONE,
        )
        .await
        .and_then(|m| m.body().deserialize::<Props>());
        match r {
            Ok(p) => Some(p),
            Err(e) => {
                log::debug!("cellular: {iface}.GetProperties on {path}: {e}");
                None
            }
        }
    }

    async fn load_modems(&mut self) {
        let r = call(
            &self.conn,
            ofono::NAME,
            "/",
            ofono::MANAGER,
            "GetModems",
            &Args::NONE,
        )
        .await
        .and_then(|m| m.body().deserialize::<Vec<(OwnedObjectPath, Props)>>());
        match r {
            Ok(list) => {
                for (path, props) in list {
                    self.add_modem(path.as_str(), &props).await;
                }
            }
            Err(e) => log::warn!("cellular: oFono's GetModems failed: {e}"),
        }
    }

    fn index(&self, path: &str) -> Option<usize> {
        self.modems.iter().position(|m| m.view.path == path)
    }

    async fn add_modem(&mut self, path: &str, props: &Props) {
        if self.index(path).is_some() {
            return;
        }
        if self.modems.len() >= caps::CELLULAR_MAX_MODEMS {
            if !std::mem::replace(&mut self.capped, true) {
                log::warn!(
                    "cellular: modem {path} ignored, more than {} (caps::CELLULAR_MAX_MODEMS)",
                    caps::CELLULAR_MAX_MODEMS
                );
            }
            return;
        }
        let mut view = ModemView {
            path: path.to_string(),
            ..ModemView::default()
        };
        for why in ofono::each(props, |k, v| ofono::modem(&mut view, k, v)) {
            log::warn!("cellular: {path}: {why}");
        }
        if !view.hardware {
            log::info!("cellular: {path} is not a hardware modem; not an uplink");
        } else {
            log::info!("cellular: modem {path}");
        }
        self.modems.push(Modem { view, sent: None });
        let i = self.modems.len() - 1;
        self.refresh(i).await;
        self.steer(i).await;
    }

    /// Reads the parts of modem `i` that its Interfaces list.
    async fn refresh(&mut self, i: usize) {
        if !self.modems[i].view.hardware {
            return;
        }
        let path = self.modems[i].view.path.clone();
        for (iface, apply) in [
            (
                ofono::SIM,
                ofono::sim as fn(&mut ModemView, &str, &Value<'_>) -> _,
            ),
            (ofono::NETREG, ofono::netreg),
            (ofono::CM, ofono::cm),
        ] {
            if !self.modems[i].view.has(iface) {
                continue;
            }
            if let Some(props) = self.get_properties(&path, iface).await {
                let view = &mut self.modems[i].view;
                for why in ofono::each(&props, |k, v| apply(view, k, v)) {
                    log::warn!("cellular: {path}: {iface}: {why}");
                }
            }
        }
        if self.modems[i].view.has(ofono::CM) {
            self.load_contexts(i).await;
        }
    }

    async fn load_contexts(&mut self, i: usize) {
        let path = self.modems[i].view.path.clone();
        let r = call(
            &self.conn,
            ofono::NAME,
            &path,
            ofono::CM,
            "GetContexts",
            &Args::NONE,
        )
        .await
        .and_then(|m| m.body().deserialize::<Vec<(OwnedObjectPath, Props)>>());
        match r {
            Ok(list) => {
                self.modems[i].view.contexts.clear();
                for (p, props) in list {
                    self.add_context(i, p.as_str(), &props);
                }
            }
            Err(e) => log::debug!("cellular: {path}: GetContexts: {e}"),
        }
    }

    fn add_context(&mut self, i: usize, path: &str, props: &Props) {
        let modem = &mut self.modems[i].view;
        modem.contexts.retain(|c| c.path != path);
        if modem.contexts.len() >= caps::CELLULAR_MAX_CONTEXTS * 2 {
            log::warn!(
                "cellular: {}: context {path} ignored, more than {} (caps::CELLULAR_MAX_CONTEXTS x 2)",
                modem.path,
                caps::CELLULAR_MAX_CONTEXTS * 2
            );
            return;
        }
        let mut ctx = Context {
            path: path.to_string(),
            ..Context::default()
        };
        for why in ofono::each(props, |k, v| ofono::context(&mut ctx, k, v)) {
            log::warn!("cellular: {}: {path}: {why}", modem.path);
        }
        modem.contexts.push(ctx);
    }

    /// Declared state of a hardware modem: powered, online while the
    /// technology is on, its packet service powered.
    async fn steer(&mut self, i: usize) {
        let v = &self.modems[i].view;
        if !v.hardware {
            return;
        }
        let path = v.path.clone();
        let t = crate::dbus::client::CALL_TIMEOUT;
        let (iface, name, value, what) = if !v.powered {
            (ofono::MODEM, "Powered", true, "power the modem")
        } else if v.online != self.online {
            let what = if self.online {
                "set the modem online"
            } else {
                "set the modem offline"
            };
            (ofono::MODEM, "Online", self.online, what)
        } else if v.cm && !v.cm_powered && v.online {
            (ofono::CM, "Powered", true, "power the packet service")
        } else {
            return;
        };
        if let Err(e) = set_property(&self.conn, &path, iface, name, value, t).await {
            if e.contains("InProgress") {
                // Busy with the previous change (power-up steps): again shortly.
                log::debug!("cellular: {path}: cannot {what} yet: {e}");
                self.steer_at = Some(Instant::now() + STEER_RETRY);
            } else {
                log::warn!("cellular: {path}: cannot {what}: {e}");
            }
        }
    }

    async fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Online(on) => {
                self.online = on;
                for i in 0..self.modems.len() {
                    self.steer(i).await;
                }
            }
            Cmd::Activate {
                modem,
                context,
                active,
            } => {
                if self.owner.is_none() || self.index(&modem).is_none() {
                    if active {
                        let why = "oFono does not know the modem".to_string();
                        self.send(CellEvent::ActivateFailed { context, why }).await;
                    }
                    return;
                }
                let timeout = Duration::from_secs(caps::CELLULAR_ACTIVATE_TIMEOUT_SECS);
                let (conn, tx) = (self.conn.clone(), self.tx.clone());
                self.ex
                    .spawn(async move {
                        let r = set_property(
                            &conn,
                            &context,
                            ofono::CONTEXT,
                            "Active",
                            active,
                            timeout,
                        )
                        .await;
                        match r {
                            Err(why) if active => {
                                let ev = CellEvent::ActivateFailed { context, why };
                                let _ = tx.send(Event::Cellular(ev)).await;
                            }
                            Err(why) => log::debug!("cellular: deactivating {context}: {why}"),
                            Ok(()) => {}
                        }
                    })
                    .detach();
            }
        }
    }

    /// The modem whose object is `path` or holds it (a context).
    fn modem_of(&self, path: &str) -> Option<usize> {
        self.modems.iter().position(|m| {
            let p = m.view.path.as_str();
            path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
        })
    }

    async fn signal(&mut self, msg: &Message) {
        let h = msg.header();
        let member = h.member().map(|m| m.to_string()).unwrap_or_default();
        let iface = h.interface().map(|i| i.to_string()).unwrap_or_default();
        let path = h.path().map(|p| p.to_string()).unwrap_or_default();
        let sender = h.sender().map(|s| s.to_string());
        if iface == "org.freedesktop.DBus" && member == "NameOwnerChanged" {
            if let Some((name, new)) = crate::dbus::client::owner_change(msg) {
                if name == ofono::NAME {
                    self.owner_changed(new).await;
                }
            }
            return;
        }
        if sender.is_none() || sender != self.owner {
            return;
        }
        match (iface.as_str(), member.as_str()) {
            (ofono::MANAGER, "ModemAdded") => {
                if let Ok((p, props)) = msg.body().deserialize::<(OwnedObjectPath, Props)>() {
                    self.add_modem(p.as_str(), &props).await;
                }
            }
            (ofono::MANAGER, "ModemRemoved") => {
                if let Ok(p) = msg.body().deserialize::<OwnedObjectPath>() {
                    if let Some(i) = self.index(p.as_str()) {
                        self.modems.remove(i);
                        log::info!("cellular: modem {} removed", p.as_str());
                        self.send(CellEvent::Gone(p.as_str().to_string())).await;
                    }
                }
            }
            (_, "PropertyChanged") => {
                let Ok((name, value)) = msg.body().deserialize::<(String, OwnedValue)>() else {
                    return;
                };
                let Some(i) = self.modem_of(&path) else {
                    return;
                };
                self.changed(i, &path, &iface, &name, &value).await;
            }
            (ofono::CM, "ContextAdded") => {
                if let (Some(i), Ok((p, props))) = (
                    self.modem_of(&path),
                    msg.body().deserialize::<(OwnedObjectPath, Props)>(),
                ) {
                    self.add_context(i, p.as_str(), &props);
                }
            }
            (ofono::CM, "ContextRemoved") => {
                if let (Some(i), Ok(p)) = (
                    self.modem_of(&path),
                    msg.body().deserialize::<OwnedObjectPath>(),
                ) {
                    self.modems[i]
                        .view
                        .contexts
                        .retain(|c| c.path != p.as_str());
                }
            }
            _ => {}
        }
    }

    async fn changed(&mut self, i: usize, path: &str, iface: &str, name: &str, v: &Value<'_>) {
        let modem = self.modems[i].view.path.clone();
        let is_modem = path == modem;
        let r = match iface {
            ofono::MODEM if is_modem => ofono::modem(&mut self.modems[i].view, name, v),
            ofono::SIM if is_modem => ofono::sim(&mut self.modems[i].view, name, v),
            ofono::NETREG if is_modem => ofono::netreg(&mut self.modems[i].view, name, v),
            ofono::CM if is_modem => ofono::cm(&mut self.modems[i].view, name, v),
            ofono::CONTEXT => match self.modems[i]
                .view
                .contexts
                .iter_mut()
                .find(|c| c.path == path)
            {
                Some(ctx) => ofono::context(ctx, name, v),
                None => Ok(()),
            },
            _ => Ok(()),
        };
        if let Err(why) = r {
            log::warn!("cellular: {modem}: {iface}: {why}");
            return;
        }
        if is_modem && iface == ofono::MODEM {
            match name {
                // New parts (a SIM read, packet service up): read them.
                "Interfaces" => {
                    self.refresh(i).await;
                    self.steer(i).await;
                }
                "Powered" | "Online" => self.steer(i).await,
                _ => {}
            }
        }
        if is_modem && iface == ofono::CM && name == "Powered" {
            self.steer(i).await;
        }
    }

    async fn owner_changed(&mut self, new: String) {
        if new.is_empty() {
            if self.owner.take().is_some() {
                log::warn!("cellular: oFono left the bus; its modems' services are gone");
            }
            for m in std::mem::take(&mut self.modems) {
                self.send(CellEvent::Gone(m.view.path)).await;
            }
            return;
        }
        log::info!("cellular: oFono is on the bus ({new})");
        self.owner = Some(new);
        self.modems.clear();
        self.load_modems().await;
    }
}
