//! `monitor`: subscribing to pathman's signals and printing one record per signal.
//!
//! One match rule and one task per interface (Manager, Technology, Service), so that
//! `monitor --services off` can stop one of them, as in connmanctl.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use crate::dbus::{Connection, MessageStream};
use smol::{LocalExecutor, Task};
use zbus::message::Type as MessageType;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Structure};
use zbus::{MatchRule, Message};

use super::commands::{CtlError, MonitorScope};
use super::format::{self, ObjectEntry, Properties};
use crate::dbus::names;

/// Where monitor output goes: stdout in pathmanctl, a buffer in tests.
pub type Sink = Rc<RefCell<dyn Write>>;

/// The interfaces `monitor` can watch; the index is [`Monitor`]'s task slot.
const INTERFACES: [&str; 3] = [
    names::MANAGER_INTERFACE,
    names::TECHNOLOGY_INTERFACE,
    names::SERVICE_INTERFACE,
];

/// The slots of [`INTERFACES`] that `scope` covers.
fn slots_of(scope: MonitorScope) -> std::ops::Range<usize> {
    match scope {
        MonitorScope::All => 0..INTERFACES.len(),
        MonitorScope::Manager => 0..1,
        MonitorScope::Technologies => 1..2,
        MonitorScope::Services => 2..3,
    }
}

/// The running subscriptions of one pathmanctl session.
pub struct Monitor<'ex> {
    ex: &'ex LocalExecutor<'static>,
    conn: Connection,
    sink: Sink,
    tasks: [Option<Task<()>>; 3],
}

impl<'ex> Monitor<'ex> {
    /// A monitor with nothing subscribed yet; printing tasks will run on `ex`.
    pub fn new(ex: &'ex LocalExecutor<'static>, conn: &Connection, sink: Sink) -> Self {
        Self {
            ex,
            conn: conn.clone(),
            sink,
            tasks: [None, None, None],
        }
    }

    /// Whether any interface is being watched.
    pub fn is_active(&self) -> bool {
        self.tasks.iter().any(Option::is_some)
    }

    /// Starts (`on`) or stops watching the interfaces of `scope`. Returns once the bus has the
    /// match rules, so no signal sent after this returns is missed.
    pub async fn set(&mut self, scope: MonitorScope, on: bool) -> Result<(), CtlError> {
        for slot in slots_of(scope) {
            if !on {
                self.tasks[slot] = None;
                continue;
            }
            if self.tasks[slot].is_some() {
                continue;
            }
            let stream = subscribe(&self.conn, INTERFACES[slot]).await?;
            self.tasks[slot] = Some(self.ex.spawn(print_signals(stream, self.sink.clone())));
        }
        Ok(())
    }

    /// Waits until every subscription ended, which only happens when the bus connection closes
    /// or the output cannot be written.
    pub async fn wait(&mut self) -> Result<(), CtlError> {
        for task in self.tasks.iter_mut().filter_map(Option::take) {
            task.await;
        }
        Err(CtlError::Call {
            context: String::new(),
            reason: "monitor stopped: bus connection closed or output not writable".into(),
        })
    }
}

async fn subscribe(conn: &Connection, interface: &str) -> Result<MessageStream, CtlError> {
    let failed = |e: zbus::Error| CtlError::Call {
        context: String::new(),
        reason: format!("cannot watch {interface}: {e}"),
    };
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .interface(interface)
        .map_err(failed)?
        .build();
    conn.stream_for(rule).await.map_err(failed)
}

async fn print_signals(mut stream: MessageStream, sink: Sink) {
    while let Some(msg) = stream.next().await {
        let Some(text) = render(&msg) else {
            continue;
        };
        let mut out = sink.borrow_mut();
        let written = out
            .write_all(text.as_bytes())
            .and_then(|()| {
                if text.ends_with('\n') {
                    Ok(())
                } else {
                    out.write_all(b"\n")
                }
            })
            .and_then(|()| out.flush());
        if written.is_err() {
            return;
        }
    }
}

/// The text for one signal, or `None` when the message is not a signal of ours.
pub fn render(msg: &Message) -> Option<String> {
    let header = msg.header();
    if header.message_type() != MessageType::Signal {
        return None;
    }
    let interface = header.interface()?.as_str().to_owned();
    let member = header.member()?.as_str().to_owned();
    let path = header.path()?.as_str().to_owned();
    let body = msg.body();
    let is_manager = interface == names::MANAGER_INTERFACE;
    let text = match member.as_str() {
        names::PROPERTY_CHANGED => body
            .deserialize::<(String, OwnedValue)>()
            .map(|(name, value)| format::property_changed_line(&interface, &path, &name, &value)),
        names::SERVICES_CHANGED if is_manager => body
            .deserialize::<(Vec<ObjectEntry>, Vec<OwnedObjectPath>)>()
            .map(|(changed, removed)| format::services_changed(&changed, &removed)),
        names::TECHNOLOGY_ADDED if is_manager => body
            .deserialize::<(OwnedObjectPath, Properties)>()
            .map(|(tech, props)| format::technology_added_line(tech.as_str(), &props)),
        names::TECHNOLOGY_REMOVED if is_manager => body
            .deserialize::<OwnedObjectPath>()
            .map(|tech| format::technology_removed_line(tech.as_str())),
        _ => {
            // Signals connmanctl has no layout for: member name, then the arguments.
            let mut line = format::monitor_prefix(&interface, &member);
            if let Ok(args) = body.deserialize::<Structure>() {
                for (i, arg) in args.fields().iter().enumerate() {
                    if i > 0 {
                        line.push_str(" = ");
                    }
                    line.push_str(&format::value(arg));
                }
            }
            Ok(line)
        }
    };
    Some(text.unwrap_or_else(|e| {
        let mut line = format::monitor_prefix(&interface, names::last_path_element(&path));
        line.push_str(&format!("{member} <malformed: {e}>"));
        line
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::test_util::path;
    use zbus::zvariant::Value;

    fn signal<B>(path: &str, interface: &str, member: &str, body: &B) -> Message
    where
        B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
    {
        let built = Message::signal(path, interface, member).and_then(|b| b.build(body));
        match built {
            Ok(m) => m,
            Err(e) => panic!("test signal: {e}"),
        }
    }

    #[test]
    fn property_changed() {
        let msg = signal(
            "/net/connman/service/ethernet_024858000001_cable",
            names::SERVICE_INTERFACE,
            names::PROPERTY_CHANGED,
            &("State", Value::from("ready")),
        );
        assert_eq!(
            render(&msg).as_deref(),
            Some("Service      ethernet_024858000001_cable State = ready")
        );
    }

    #[test]
    fn technology_removed_and_malformed() {
        let msg = signal(
            "/",
            names::MANAGER_INTERFACE,
            names::TECHNOLOGY_REMOVED,
            &(path("/net/connman/technology/wifi"),),
        );
        assert_eq!(
            render(&msg).as_deref(),
            Some("Manager      TechnologyRemoved    /net/connman/technology/wifi")
        );
        let msg = signal(
            "/",
            names::MANAGER_INTERFACE,
            names::PROPERTY_CHANGED,
            &(7u32,),
        );
        let text = render(&msg).unwrap_or_default();
        assert!(text.contains("PropertyChanged <malformed"), "{text}");
    }

    #[test]
    fn unknown_signal_prints_its_arguments() {
        let msg = signal("/", names::MANAGER_INTERFACE, "SessionAdded", &("x", 3u8));
        assert_eq!(
            render(&msg).as_deref(),
            Some("Manager      SessionAdded         x = 3")
        );
    }
}
