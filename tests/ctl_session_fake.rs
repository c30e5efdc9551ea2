//! `pathmanctl session` against a fake `net.connman` on a private dbus-daemon.
//!
//! One test function on purpose: the bus address is process-global state
//! (`DBUS_SYSTEM_BUS_ADDRESS`), so the steps run in sequence on one bus.

#[path = "common/private_bus.rs"]
mod private_bus;
use private_bus::{opath, props, words, Buffer, PrivateBus, Props};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pathman::ctl::commands::{self, BusCommand, Command, CtlError};
use pathman::ctl::session::{self, CreateOptions};
use pathman::dbus::{bus, names};
use smol::{LocalExecutor, Task};
use zbus::message::{Flags, Header};
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, Message};

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "net.connman.Error")]
enum FakeError {
    #[zbus(error)]
    ZBus(zbus::Error),
    InvalidArguments(String),
}

const SESSION_PATH: &str = "/sessions/1";
const MPATH1: &str = "ethernet_02504d000002_cable";
const MPATH2: &str = "ethernet_02504d000003_cable";

fn full_settings() -> Props {
    let mut ipv4: HashMap<String, Value<'static>> = HashMap::new();
    ipv4.insert("Method".into(), Value::from("dhcp"));
    ipv4.insert("Address".into(), Value::from("198.18.1.146"));
    ipv4.insert("Netmask".into(), Value::from("255.255.255.0"));
    let ipv6: HashMap<String, Value<'static>> = HashMap::new();
    props(vec![
        ("State", Value::from("connected")),
        ("Name", Value::from("Wired")),
        ("Bearer", Value::from("ethernet")),
        ("Interface", Value::from("eth0")),
        ("IPv4", Value::from(ipv4)),
        ("IPv6", Value::from(ipv6)),
        ("AllowedBearers", Value::from(vec!["ethernet"])),
        ("ConnectionType", Value::from("any")),
        ("AllowedInterface", Value::from("*")),
        ("SourceIPRule", Value::from(true)),
        ("ContextIdentifier", Value::from("app1")),
        ("MultipathRoutedServices", Value::from(Vec::<String>::new())),
        ("FlowSelectors", Value::from(vec!["*-*-udp-7777-8888"])),
    ])
}

/// What the fakes saw, in order, and who the session's client is.
#[derive(Default)]
struct State {
    calls: Vec<String>,
    /// (client's unique name, notifier path) of the last session created.
    client: Option<(String, String)>,
}

type Shared = Arc<Mutex<State>>;

fn record(state: &Shared, call: String) {
    if let Ok(mut s) = state.lock() {
        s.calls.push(call);
    }
}

fn client_of(state: &Shared) -> Option<(String, String)> {
    state.lock().ok().and_then(|s| s.client.clone())
}

async fn notify(conn: &Connection, client: &(String, String), member: &str, body: &Props) {
    conn.call_method(
        Some(client.0.as_str()),
        client.1.as_str(),
        Some(names::NOTIFICATION_INTERFACE),
        member,
        &(body,),
    )
    .await
    .expect("notifier answers");
}

struct FakeManager {
    state: Shared,
}

#[zbus::interface(name = "net.connman.Manager")]
impl FakeManager {
    async fn create_session(
        &self,
        settings: Props,
        notifier: OwnedObjectPath,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath, FakeError> {
        let mut keys: Vec<String> = settings
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k} ({}) = {}",
                    v.value_signature(),
                    pathman::ctl::format::value_styled(v, pathman::ctl::format::Style::Seed)
                )
            })
            .collect();
        keys.sort();
        record(&self.state, format!("CreateSession {}", keys.join(", ")));
        if settings.contains_key("AllowedInterface") {
            return Err(FakeError::InvalidArguments(
                "AllowedInterface: no such interface".into(),
            ));
        }
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let client = (sender, notifier.as_str().to_owned());
        if let Ok(mut s) = self.state.lock() {
            s.client = Some(client.clone());
        }
        // Like a daemon that sends the first Update before it replies, and waits for the
        // client's answer: pathmanctl must serve its notifier before CreateSession returns.
        notify(conn, &client, "Update", &full_settings()).await;
        Ok(opath(SESSION_PATH))
    }

    fn destroy_session(&self, session: OwnedObjectPath) -> Result<(), FakeError> {
        record(&self.state, format!("DestroySession {}", session.as_str()));
        if session.as_str() == SESSION_PATH {
            Ok(())
        } else {
            Err(FakeError::InvalidArguments("no such session".into()))
        }
    }

    fn get_sessions(&self) -> Vec<OwnedObjectPath> {
        vec![opath(SESSION_PATH)]
    }
}

struct FakeSession {
    state: Shared,
}

#[zbus::interface(name = "net.connman.Session")]
impl FakeSession {
    async fn connect(&self, #[zbus(connection)] conn: &Connection) {
        record(&self.state, "Connect".into());
        if let Some(client) = client_of(&self.state) {
            let partial = props(vec![(
                "MultipathRoutedServices",
                Value::from(vec![MPATH1, MPATH2]),
            )]);
            notify(conn, &client, "Update", &partial).await;
        }
    }

    fn disconnect(&self) {
        record(&self.state, "Disconnect".into());
    }

    fn change(&self, name: String, value: OwnedValue) -> Result<(), FakeError> {
        record(
            &self.state,
            format!(
                "Change {name} ({}) = {}",
                value.value_signature(),
                pathman::ctl::format::value_styled(&value, pathman::ctl::format::Style::Seed)
            ),
        );
        if name == "ContextIdentifier" {
            return Err(FakeError::InvalidArguments("ContextIdentifier".into()));
        }
        Ok(())
    }

    fn destroy(&self) {
        record(&self.state, "Destroy".into());
    }
}

fn create_options(line: &str) -> CreateOptions {
    match commands::parse(&words(&format!("session create {line}"))) {
        Ok(Command::Session(o)) => o,
        other => panic!("{line}: {other:?}"),
    }
}

fn calls(state: &Shared) -> Vec<String> {
    state.lock().map(|s| s.calls.clone()).unwrap_or_default()
}

fn take_calls(state: &Shared) -> Vec<String> {
    state
        .lock()
        .map(|mut s| std::mem::take(&mut s.calls))
        .unwrap_or_default()
}

type Input = smol::channel::Sender<std::io::Result<String>>;

/// Starts a session with `options` on `ex`: its input is the returned sender, its output the
/// returned buffer.
fn start(
    ex: &'static LocalExecutor<'static>,
    client: &pathman::dbus::Connection,
    options: CreateOptions,
) -> (Input, Buffer, Task<Result<(), CtlError>>) {
    let (tx, rx) = smol::channel::unbounded();
    let out = Buffer::default();
    let sink = out.sink();
    let client = client.clone();
    let run = ex.spawn(async move { session::run(ex, &client, &options, rx, sink, false).await });
    (tx, out, run)
}

fn send(input: &Input, line: &str) {
    input
        .try_send(Ok(line.to_owned()))
        .expect("session reads input");
}

async fn wait_calls(state: &Shared, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while calls(state).len() < n {
        assert!(Instant::now() < deadline, "calls: {:?}", calls(state));
        smol::Timer::after(Duration::from_millis(20)).await;
    }
}

const FULL_UPDATE: &str = " State = connected
 Name = Wired
 Bearer = ethernet
 Interface = eth0
 IPv4 = { Address=198.18.1.146 Method=dhcp Netmask=255.255.255.0 }
 IPv6 = { }
 AllowedBearers = [ ethernet ]
 ConnectionType = any
 AllowedInterface = *
 SourceIPRule = true
 ContextIdentifier = app1
 MultipathRoutedServices = [ ]
 FlowSelectors = [ *-*-udp-7777-8888 ]
";

#[test]
fn session_against_a_fake_daemon() {
    let _bus = PrivateBus::start("ctlsess-test");
    // Leaked so the session runs, which borrow it, can be spawned on it.
    let ex: &'static LocalExecutor<'static> = Box::leak(Box::new(LocalExecutor::new()));
    smol::block_on(ex.run(async {
        let client = bus::connect_system().await.expect("client connects");
        let _client_ticker = bus::spawn_ticker(ex, &client);

        // Nobody owns net.connman yet.
        let (_tx, out, run) = start(ex, &client, CreateOptions::default());
        let r = run.await;
        assert!(matches!(r, Err(CtlError::NotRunning)), "{r:?}");
        assert_eq!(out.text(), "");

        // The fake serves with zbus's own connection and object server (its executor thread).
        let server = zbus::Connection::system().await.expect("server connects");
        let state: Shared = Arc::default();
        let objects = server.object_server();
        objects
            .at(
                "/",
                FakeManager {
                    state: state.clone(),
                },
            )
            .await
            .expect("serve manager");
        objects
            .at(
                SESSION_PATH,
                FakeSession {
                    state: state.clone(),
                },
            )
            .await
            .expect("serve session");
        server
            .request_name(names::BUS_NAME)
            .await
            .expect("own net.connman");

        // session list / destroy are one round of calls.
        let mut listed = Vec::new();
        commands::execute(&client, &BusCommand::SessionList, &mut listed)
            .await
            .expect("list");
        assert_eq!(String::from_utf8_lossy(&listed), "/sessions/1\n");
        let Ok(Command::Bus(destroy9)) = commands::parse(&words("session destroy /sessions/9"))
        else {
            panic!("session destroy parses");
        };
        let err = commands::execute(&client, &destroy9, &mut Vec::new())
            .await
            .expect_err("unknown session");
        assert_eq!(
            err.to_string(),
            "Error /sessions/9: Invalid arguments (no such session)"
        );
        let args = words("session list");
        assert_eq!(
            smol::unblock(move || pathman::ctl::main(&args)).await,
            0,
            "pathmanctl session list"
        );
        take_calls(&state);

        // A refused CreateSession is returned, and nothing is printed.
        let (_tx, out, run) = start(ex, &client, create_options("--ifname eth9"));
        let r = run.await;
        assert_eq!(
            r.map_err(|e| e.to_string()),
            Err("Error session: Invalid arguments (AllowedInterface: no such interface)".into())
        );
        assert_eq!(out.text(), "");
        assert_eq!(
            take_calls(&state),
            ["CreateSession AllowedInterface (s) = eth9"]
        );

        // The full run: create with settings and --connect, Updates, config lines, quit.
        let options = create_options(
            "--bearers ethernet --type any --srciprule yes --ctxid app1 \
             --flows *-*-udp-7777-8888 --connect",
        );
        let (tx, out, run) = start(ex, &client, options);
        let text = out.wait_for(MPATH2).await;
        let notifier = client_of(&state).map(|c| c.1).unwrap_or_default();
        assert!(
            notifier.starts_with("/net/connman/pathmanctl/session"),
            "{notifier}"
        );
        assert_eq!(
            text,
            format!(
                "Session created at /sessions/1\n\
                 Update called at {notifier}\n{FULL_UPDATE}\
                 Update called at {notifier}\n \
                 MultipathRoutedServices = [ {MPATH1} {MPATH2} ]\n"
            )
        );
        send(&tx, "session config FlowSelectors *-*-* *-*-udp-7777-8888");
        send(&tx, "config SourceIPRule no");
        send(&tx, "config AllowedBearers");
        send(&tx, "config ContextIdentifier other");
        send(&tx, "config Bogus 1");
        send(&tx, "config SourceIPRule maybe");
        send(&tx, "disconnect");
        send(&tx, "");
        send(&tx, "quit");
        let result = run.await;
        assert!(result.is_ok(), "{result:?}");
        let text = out.text();
        let tail = text
            .split(&format!("{MPATH2} ]\n"))
            .nth(1)
            .unwrap_or_default();
        assert_eq!(
            tail,
            "Error ContextIdentifier: Invalid arguments (ContextIdentifier)\n\
             Error 'Bogus': Unknown setting\n\
             Error 'SourceIPRule': Expected yes or no, not 'maybe'\n"
        );
        assert_eq!(
            take_calls(&state),
            [
                "CreateSession AllowedBearers (as) = [ ethernet ], ConnectionType (s) = any, \
                 ContextIdentifier (s) = app1, FlowSelectors (as) = [ *-*-udp-7777-8888 ], \
                 SourceIPRule (b) = true",
                "Connect",
                "Change FlowSelectors (as) = [ *-*-* *-*-udp-7777-8888 ]",
                "Change SourceIPRule (b) = false",
                "Change AllowedBearers (as) = [ ]",
                "Change ContextIdentifier (s) = other",
                "Disconnect",
                "Destroy",
            ]
        );

        // The daemon releases the session (no reply expected, as on shutdown).
        let (tx, out, run) = start(ex, &client, CreateOptions::default());
        out.wait_for("FlowSelectors").await;
        let (who, notifier) = client_of(&state).expect("session created");
        let release = Message::method_call(notifier.as_str(), "Release")
            .and_then(|b| b.destination(who.as_str()))
            .and_then(|b| b.interface(names::NOTIFICATION_INTERFACE))
            .and_then(|b| b.with_flags(Flags::NoReplyExpected))
            .and_then(|b| b.build(&()))
            .expect("release message");
        server.send(&release).await.expect("send release");
        let result = run.await;
        assert!(result.is_ok(), "{result:?}");
        assert!(out.text().ends_with("Session released\n"), "{}", out.text());
        assert_eq!(take_calls(&state), ["CreateSession "]);
        drop(tx);

        // End of input destroys the session; the `destroy` word does too.
        for last in [None, Some("destroy")] {
            let (tx, out, run) = start(ex, &client, CreateOptions::default());
            out.wait_for("FlowSelectors").await;
            match last {
                Some(line) => send(&tx, line),
                None => drop(tx),
            }
            let result = run.await;
            assert!(result.is_ok(), "{result:?}");
            wait_calls(&state, 2).await;
            assert_eq!(take_calls(&state), ["CreateSession ", "Destroy"]);
        }

        // pathman leaving the bus without Release ends the session with an error.
        let (_tx, out, run) = start(ex, &client, CreateOptions::default());
        out.wait_for("FlowSelectors").await;
        server
            .release_name(names::BUS_NAME)
            .await
            .expect("release name");
        let result = run.await;
        assert!(matches!(result, Err(CtlError::NotRunning)), "{result:?}");
        assert!(
            out.text().ends_with("Session lost: pathman left the bus\n"),
            "{}",
            out.text()
        );
    }));
}
