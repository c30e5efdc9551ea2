//! pathmanctl against a fake `net.connman` on a private dbus-daemon.
//!
//! One test function on purpose: the bus address is process-global state
//! (`DBUS_SYSTEM_BUS_ADDRESS`), so the steps run in sequence on one bus.

#[path = "common/private_bus.rs"]
mod private_bus;
use private_bus::{opath, props, words, Buffer, PrivateBus, Props};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pathman::ctl::commands::{self, BusCommand, Command, CtlError, MonitorScope};
use pathman::ctl::monitor::Monitor;
use pathman::dbus::{bus, names};
use smol::LocalExecutor;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "net.connman.Error")]
enum FakeError {
    #[zbus(error)]
    ZBus(zbus::Error),
    AlreadyEnabled(String),
    NotConnected(String),
    NotSupported(String),
    InvalidArguments(String),
}

const ETH1: &str = "ethernet_024858000001_cable";
const ETH2: &str = "ethernet_024858000002_cable";

fn service_props(n: u8, state: &str, mpath: bool) -> Props {
    let mut ipv4: HashMap<String, Value<'static>> = HashMap::new();
    ipv4.insert("Method".into(), Value::from("dhcp"));
    ipv4.insert("Address".into(), Value::from(format!("198.18.{n}.100")));
    ipv4.insert("Netmask".into(), Value::from("255.255.255.0"));
    ipv4.insert("Gateway".into(), Value::from(format!("198.18.{n}.1")));
    props(vec![
        ("Type", Value::from("ethernet")),
        ("Name", Value::from("Wired")),
        ("State", Value::from(state)),
        ("Favorite", Value::from(true)),
        ("AutoConnect", Value::from(true)),
        ("MultipathRouting", Value::from(mpath)),
        ("MultipathTcpLink", Value::from("on")),
        ("Security", Value::from(Vec::<String>::new())),
        ("Nameservers", Value::from(vec![format!("198.18.{n}.1")])),
        ("IPv4", Value::from(ipv4)),
    ])
}

struct FakeManager;

#[zbus::interface(name = "net.connman.Manager")]
impl FakeManager {
    fn get_properties(&self) -> Props {
        props(vec![
            ("State", Value::from("online")),
            ("OfflineMode", Value::from(false)),
            ("SessionMode", Value::from(false)),
        ])
    }

    fn get_technologies(&self) -> Vec<(OwnedObjectPath, Props)> {
        vec![(
            opath("/net/connman/technology/ethernet"),
            props(vec![
                ("Name", Value::from("Wired")),
                ("Type", Value::from("ethernet")),
                ("Powered", Value::from(true)),
                ("Connected", Value::from(true)),
                ("Tethering", Value::from(false)),
            ]),
        )]
    }

    fn get_services(&self) -> Vec<(OwnedObjectPath, Props)> {
        vec![
            (
                opath(&names::service_path(ETH1)),
                service_props(1, "online", true),
            ),
            (
                opath(&names::service_path(ETH2)),
                service_props(2, "ready", false),
            ),
        ]
    }

    #[zbus(signal)]
    async fn services_changed(
        emitter: &SignalEmitter<'_>,
        changed: Vec<(OwnedObjectPath, Props)>,
        removed: Vec<OwnedObjectPath>,
    ) -> zbus::Result<()>;
}

struct FakeTechnology {
    powered: Mutex<bool>,
}

#[zbus::interface(name = "net.connman.Technology")]
impl FakeTechnology {
    fn set_property(&self, name: String, value: OwnedValue) -> Result<(), FakeError> {
        let on = bool::try_from(value).map_err(|e| FakeError::InvalidArguments(e.to_string()))?;
        if name != "Powered" {
            return Err(FakeError::InvalidArguments(name));
        }
        let mut powered = self
            .powered
            .lock()
            .map_err(|e| FakeError::NotSupported(e.to_string()))?;
        if *powered == on {
            return Err(FakeError::AlreadyEnabled("Already enabled".into()));
        }
        *powered = on;
        Ok(())
    }
}

/// What the fake service was asked to do, for the test to check.
type Calls = Arc<Mutex<Vec<String>>>;

struct FakeService {
    n: u8,
    calls: Calls,
}

impl FakeService {
    fn record(&self, call: String) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }
}

#[zbus::interface(name = "net.connman.Service")]
impl FakeService {
    fn get_properties(&self) -> Props {
        service_props(self.n, "online", true)
    }

    fn set_property(&self, name: String, value: OwnedValue) -> Result<(), FakeError> {
        let sig = value.value_signature().to_string();
        self.record(format!(
            "{name} ({sig}) = {}",
            pathman::ctl::format::value(&value)
        ));
        Ok(())
    }

    fn connect(&self) {
        self.record("Connect".into());
    }

    fn disconnect(&self) -> Result<(), FakeError> {
        Err(FakeError::NotConnected("Not connected".into()))
    }

    fn remove(&self) -> Result<(), FakeError> {
        Err(FakeError::NotSupported(
            "ethernet services cannot be removed".into(),
        ))
    }

    fn move_before(&self, target: OwnedObjectPath) {
        self.record(format!("MoveBefore {}", target.as_str()));
    }

    #[zbus(signal)]
    async fn property_changed(
        emitter: &SignalEmitter<'_>,
        name: &str,
        value: Value<'_>,
    ) -> zbus::Result<()>;
}

fn parse(line: &str) -> BusCommand {
    match commands::parse(&words(line)) {
        Ok(Command::Bus(c)) => c,
        other => panic!("{line}: {other:?}"),
    }
}

async fn run(conn: &pathman::dbus::Connection, line: &str) -> Result<String, CtlError> {
    let mut out = Vec::new();
    commands::execute(conn, &parse(line), &mut out).await?;
    Ok(String::from_utf8(out).expect("utf-8 output"))
}

async fn ctl_main(line: &str) -> i32 {
    let args = words(line);
    // pathmanctl's main runs its own executor; our executor must keep serving the fake.
    smol::unblock(move || pathman::ctl::main(&args)).await
}

#[test]
fn pathmanctl_against_a_fake_daemon() {
    let _bus = PrivateBus::start("ctl-test");
    let ex: LocalExecutor<'static> = LocalExecutor::new();
    smol::block_on(ex.run(async {
        let client = bus::connect_system().await.expect("client connects");
        let _client_ticker = bus::spawn_ticker(&ex, &client);

        // Nobody owns net.connman yet.
        assert!(matches!(run(&client, "state").await, Err(CtlError::NotRunning)));
        assert_eq!(ctl_main("state").await, 1);
        assert_eq!(ctl_main("frobnicate").await, 1);
        assert_eq!(ctl_main("help").await, 0);

        // The fake serves with zbus's own connection and object server (its executor thread).
        let server = zbus::Connection::system().await.expect("server connects");
        let calls: Calls = Arc::default();
        let objects = server.object_server();
        objects.at("/", FakeManager).await.expect("serve manager");
        objects
            .at(
                "/net/connman/technology/ethernet",
                FakeTechnology {
                    powered: Mutex::new(true),
                },
            )
            .await
            .expect("serve technology");
        objects
            .at(
                names::service_path(ETH1),
                FakeService {
                    n: 1,
                    calls: calls.clone(),
                },
            )
            .await
            .expect("serve service");
        server.request_name(names::BUS_NAME).await.expect("own net.connman");

        assert_eq!(
            run(&client, "state").await.expect("state"),
            "  OfflineMode = False\n  SessionMode = False\n  State = online\n"
        );
        assert_eq!(ctl_main("state").await, 0);

        assert_eq!(
            run(&client, "services").await.expect("services"),
            format!("*AMO Wired                {ETH1}\n*A R Wired                {ETH2}\n")
        );

        assert_eq!(
            run(&client, &format!("services {ETH1}")).await.expect("service"),
            format!(
                "/net/connman/service/{ETH1}\n  \
                 AutoConnect = True\n  \
                 Favorite = True\n  \
                 IPv4 = [ Address=198.18.1.100, Gateway=198.18.1.1, Method=dhcp, Netmask=255.255.255.0 ]\n  \
                 MultipathRouting = True\n  \
                 MultipathTcpLink = on\n  \
                 Name = Wired\n  \
                 Nameservers = [ 198.18.1.1 ]\n  \
                 Security = [  ]\n  \
                 State = online\n  \
                 Type = ethernet\n"
            )
        );

        assert_eq!(
            run(&client, "technologies").await.expect("technologies"),
            "/net/connman/technology/ethernet\n  Connected = True\n  Name = Wired\n  \
             Powered = True\n  Tethering = False\n  Type = ethernet\n"
        );

        let err = run(&client, "enable ethernet").await.expect_err("already on");
        assert_eq!(err.to_string(), "Error ethernet: Already enabled");
        assert_eq!(
            run(&client, "disable ethernet").await.expect("disable"),
            "Disabled ethernet\n"
        );
        let err = run(&client, "enable wifi").await.expect_err("no wifi object");
        assert!(err.to_string().starts_with("Error wifi: "), "{err}");

        assert_eq!(
            run(&client, &format!("connect {ETH1}")).await.expect("connect"),
            format!("Connected {ETH1}\n")
        );
        let err = run(&client, &format!("disconnect {ETH1}")).await.expect_err("not connected");
        assert_eq!(
            err.to_string(),
            format!("Error /net/connman/service/{ETH1}: Not connected")
        );
        assert_eq!(
            run(&client, &format!("move-before {ETH1} {ETH2}")).await.expect("move"),
            format!("Moved {ETH1} before {ETH2}\n")
        );

        let err = run(
            &client,
            &format!(
                "config {ETH1} --ipv4 manual 198.18.1.5 255.255.255.0 198.18.1.1 \
                 --nameservers 1.1.1.1 9.9.9.9 --mpath_routing yes --mpath_tcp_link backup \
                 --remove --autoconnect no"
            ),
        )
        .await
        .expect_err("remove is refused");
        assert_eq!(
            err.to_string(),
            format!(
                "Error {ETH1} --remove: Not supported (ethernet services cannot be removed)"
            )
        );
        let recorded = calls.lock().map(|c| c.clone()).unwrap_or_default();
        assert_eq!(
            recorded,
            vec![
                "Connect".to_owned(),
                format!("MoveBefore /net/connman/service/{ETH2}"),
                "IPv4.Configuration (a{sv}) = [ Address=198.18.1.5, Gateway=198.18.1.1, \
                 Method=manual, Netmask=255.255.255.0 ]"
                    .to_owned(),
                "Nameservers.Configuration (as) = [ 1.1.1.1, 9.9.9.9 ]".to_owned(),
                "MultipathRouting (b) = True".to_owned(),
                "MultipathTcpLink (s) = backup".to_owned(),
                "AutoConnect (b) = False".to_owned(),
            ]
        );

        // The fake serves no Clock: the D-Bus error is shown, exit 1.
        let err = run(&client, "clock").await.expect_err("no clock");
        assert!(err.to_string().starts_with("Error: "), "{err}");
        assert_eq!(ctl_main("clock").await, 1);

        // monitor: signals become one line each (ServicesChanged: one line per service).
        let buf = Buffer::default();
        let mut monitor = Monitor::new(&ex, &client, buf.sink());
        monitor.set(MonitorScope::All, true).await.expect("monitor");
        let service_emitter = SignalEmitter::new(&server, names::service_path(ETH1))
            .expect("emitter");
        FakeService::property_changed(&service_emitter, "State", Value::from("ready"))
            .await
            .expect("emit");
        buf.wait_for(&format!("Service      {ETH1} State = ready\n")).await;
        let manager_emitter = SignalEmitter::new(&server, "/").expect("emitter");
        FakeManager::services_changed(
            &manager_emitter,
            vec![
                (opath(&names::service_path(ETH2)), service_props(2, "online", true)),
                (opath(&names::service_path(ETH1)), Props::new()),
            ],
            vec![opath("/net/connman/service/ethernet_024858000003_cable")],
        )
        .await
        .expect("emit");
        let text = buf.wait_for("}\n").await;
        assert!(
            text.ends_with(&format!(
                "Manager      ServicesChanged      = {{\n\
                 *AMO Wired                {ETH2}\n\
                 unchanged                {ETH1}\n\
                 }}, {{\n\
                 removed                  /net/connman/service/ethernet_024858000003_cable\n\
                 }}\n"
            )),
            "{text}"
        );

        // After `monitor --services off`, service signals are no longer printed.
        monitor.set(MonitorScope::Services, false).await.expect("monitor off");
        buf.clear();
        FakeService::property_changed(&service_emitter, "State", Value::from("idle"))
            .await
            .expect("emit");
        FakeManager::services_changed(&manager_emitter, vec![], vec![])
            .await
            .expect("emit");
        let text = buf.wait_for("ServicesChanged").await;
        assert!(!text.contains("State = idle"), "{text}");
        assert!(monitor.is_active());
    }));
}
