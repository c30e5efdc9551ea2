//! pathmanctl's commands: parsing a command line into a [`Command`] and running the D-Bus calls
//! of a [`BusCommand`].
//!
//! A new command is a variant of [`Command`] (or [`BusCommand`] when it is one round of calls),
//! a branch in [`parse`], a branch in [`execute`] and a line in [`USAGE`].

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::dbus::Connection;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, Value};

use super::format::{self, ObjectEntry, Properties};
use super::session::{self, CreateOptions};
pub(super) use crate::dbus::client::Args;
use crate::dbus::names;

/// The help text, in connmanctl's layout.
pub const USAGE: &str = "\
Usage: pathmanctl [[command] [args]]
state                                 Show whether the system is online
state --all                           Everything pathman owns and believes (needs root)
technologies                          Show technologies and their properties
clock                                 Show the clock properties
enable          <technology>|offline  Power a technology on, or enter offline mode
disable         <technology>|offline  Power a technology off, or leave offline mode
scan            <technology>          Scan for new services (wifi)
tether          <technology> on|off   Share the uplinks with a technology's LAN (ethernet, gadget)
                wifi on|off <ssid> <passphrase> [<freq>]
tethering_clients                     List the tethered clients (MAC addresses)
services        [<service>]           List services, or show one service's properties
connect         <service>             Connect a service
disconnect      <service>             Disconnect a service
move-before     <service> <target>    Move <service> before <target> in the order
move-after      <service> <target>    Move <service> after <target> in the order
config          <service>             Change service configuration (several options allowed)
   --nameservers     <dns1> [<dns2>] [...]
   --timeservers     <ntp1> [<ntp2>] [...]
   --domains         <domain1> [<domain2>] [...]
   --ipv4            off|dhcp|manual <address> <netmask> <gateway>
   --ipv6            off|auto [enable|disable|preferred]|
                     manual <address> <prefixlength> <gateway>
   --autoconnect     yes|no
   --mpath_routing   yes|no           Per-uplink source routing table
   --mpath_tcp_link  on|backup|off    Use this uplink for MPTCP subflows
   --remove                           Remove (forget) the service
session         create [options]      Create a session, print its Updates, change it from stdin
   --bearers         <type1> [<type2>] [...]
   --type            local|internet|any
   --ifname          <interface>
   --srciprule       yes|no
   --ctxid           <context identifier>
   --flows           <selector1> [<selector2>] [...]
   --mpath-services  <service1> [<service2>] [...]
   --connect                          Connect the session once created
session         list                  List the sessions
session         destroy <path>        Destroy a session
agent           on|off                Answer pathman's requests for passphrases
                                      (interactive mode only)
monitor         [off]                 Print signals as they arrive
   --services        [off]            Only services
   --tech            [off]            Only technologies
   --manager         [off]            Only the manager
help                                  Show this help
exit                                  Leave interactive mode
quit                                  Leave interactive mode
";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// One round of D-Bus calls, printed when done.
    Bus(BusCommand),
    /// Start or stop printing signals.
    Monitor {
        /// Which interfaces.
        scope: MonitorScope,
        /// `false` for `monitor … off`.
        on: bool,
    },
    /// `session create`: create a session and stay with it until it ends.
    Session(CreateOptions),
    /// `agent on` (`true`) / `agent off`: register or unregister the input agent.
    Agent(bool),
    /// Print [`USAGE`].
    Help,
    /// Leave interactive mode.
    Exit,
}

/// A command that is a fixed sequence of method calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusCommand {
    /// `state`: Manager.GetProperties.
    State,
    /// `state --all`: pathman's Debug.GetState, the serial-console dump.
    StateAll,
    /// `technologies`: Manager.GetTechnologies.
    Technologies,
    /// `clock`: Clock.GetProperties.
    Clock,
    /// `services`: the list; `services ID`: one service's properties.
    Services(Option<ServiceId>),
    /// `enable`/`disable`.
    Power {
        /// A technology or offline mode.
        target: PowerTarget,
        /// `true` for `enable`.
        on: bool,
    },
    /// `scan TECH`: Technology.Scan.
    Scan(String),
    /// `tether TECH on|off [SSID PASSPHRASE [FREQ]]`: Technology.SetProperty of
    /// TetheringIdentifier, TetheringPassphrase, TetheringFreq, then Tethering.
    Tether {
        tech: String,
        on: bool,
        ap: Option<(String, String, Option<i32>)>,
    },
    /// `tethering_clients`: Manager.GetTetheringClients.
    TetheringClients,
    /// `connect ID`.
    Connect(ServiceId),
    /// `disconnect ID`.
    Disconnect(ServiceId),
    /// `move-before`/`move-after`.
    Move {
        /// The service that moves.
        service: ServiceId,
        /// The service it moves next to.
        target: ServiceId,
        /// Before or after `target`.
        position: MovePosition,
    },
    /// `config ID --option …`: each option is one call, in command-line order.
    Config {
        /// The service to change.
        service: ServiceId,
        /// The options, at least one.
        options: Vec<ConfigOption>,
    },
    /// `session list`: Manager.GetSessions.
    SessionList,
    /// `session destroy PATH`: Manager.DestroySession.
    SessionDestroy(OwnedObjectPath),
}

/// A service identifier (`ethernet_024858000001_cable`): one valid object-path element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceId(String);

impl ServiceId {
    /// `id` if it can name a service object.
    pub fn new(id: &str) -> Option<Self> {
        names::is_valid_path_element(id).then(|| Self(id.to_owned()))
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The service's object path.
    pub fn path(&self) -> String {
        names::service_path(&self.0)
    }
}

/// What `enable`/`disable` switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerTarget {
    /// A technology type (`ethernet`, `wifi`, …): its `Powered` property.
    Technology(String),
    /// The Manager's `OfflineMode`.
    Offline,
}

/// Where `move-before`/`move-after` puts the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovePosition {
    /// Service.MoveBefore.
    Before,
    /// Service.MoveAfter.
    After,
}

/// Which signals `monitor` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorScope {
    /// Manager, Technology and Service.
    All,
    /// Service only (`--services`).
    Services,
    /// Technology only (`--tech`).
    Technologies,
    /// Manager only (`--manager`).
    Manager,
}

/// One `config` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOption {
    /// `--ipv4`: IPv4.Configuration.
    Ipv4(Ipv4Config),
    /// `--ipv6`: IPv6.Configuration.
    Ipv6(Ipv6Config),
    /// `--nameservers`: Nameservers.Configuration.
    Nameservers(Vec<String>),
    /// `--timeservers`: Timeservers.Configuration.
    Timeservers(Vec<String>),
    /// `--domains`: Domains.Configuration.
    Domains(Vec<String>),
    /// `--autoconnect`: AutoConnect.
    AutoConnect(bool),
    /// `--mpath_routing`: MultipathRouting.
    MultipathRouting(bool),
    /// `--mpath_tcp_link`: MultipathTcpLink.
    MultipathTcpLink(MptcpLink),
    /// `--remove`: Service.Remove.
    Remove,
}

/// `--ipv4` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv4Config {
    /// `off`
    Off,
    /// `dhcp`
    Dhcp,
    /// `manual ADDR [MASK [GW]]`
    Manual {
        /// Address.
        address: Ipv4Addr,
        /// Netmask, dotted.
        netmask: Option<Ipv4Addr>,
        /// Gateway.
        gateway: Option<Ipv4Addr>,
    },
}

/// `--ipv6` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv6Config {
    /// `off`
    Off,
    /// `auto [enable|disable|preferred]`
    Auto {
        /// Privacy extensions, if given.
        privacy: Option<Ipv6Privacy>,
    },
    /// `manual ADDR [PLEN [GW]]`
    Manual {
        /// Address.
        address: Ipv6Addr,
        /// Prefix length, 0–128.
        prefix_length: Option<u8>,
        /// Gateway.
        gateway: Option<Ipv6Addr>,
    },
}

/// IPv6 privacy extension settings (`Privacy` in IPv6.Configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Privacy {
    /// `disabled`
    Disabled,
    /// `enabled`
    Enabled,
    /// `prefered` (ConnMan's spelling on the bus)
    Preferred,
}

impl Ipv6Privacy {
    /// The value on the bus.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Enabled => "enabled",
            Self::Preferred => "prefered",
        }
    }
}

/// `--mpath_tcp_link` values (MultipathTcpLink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MptcpLink {
    /// Use the uplink for MPTCP subflows.
    On,
    /// Use it only as a backup path.
    Backup,
    /// Never use it for MPTCP.
    Off,
}

impl MptcpLink {
    /// The value on the bus.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Backup => "backup",
            Self::Off => "off",
        }
    }
}

impl ConfigOption {
    /// The long option name, for messages.
    pub fn option_name(&self) -> &'static str {
        match self {
            Self::Ipv4(_) => "--ipv4",
            Self::Ipv6(_) => "--ipv6",
            Self::Nameservers(_) => "--nameservers",
            Self::Timeservers(_) => "--timeservers",
            Self::Domains(_) => "--domains",
            Self::AutoConnect(_) => "--autoconnect",
            Self::MultipathRouting(_) => "--mpath_routing",
            Self::MultipathTcpLink(_) => "--mpath_tcp_link",
            Self::Remove => "--remove",
        }
    }

    /// The property and value to set, or `None` for [`ConfigOption::Remove`] (a method call).
    pub fn property(&self) -> Option<(&'static str, Value<'static>)> {
        Some(match self {
            Self::Ipv4(c) => ("IPv4.Configuration", ipv4_dict(c)),
            Self::Ipv6(c) => ("IPv6.Configuration", ipv6_dict(c)),
            Self::Nameservers(l) => ("Nameservers.Configuration", Value::from(l.clone())),
            Self::Timeservers(l) => ("Timeservers.Configuration", Value::from(l.clone())),
            Self::Domains(l) => ("Domains.Configuration", Value::from(l.clone())),
            Self::AutoConnect(b) => ("AutoConnect", Value::from(*b)),
            Self::MultipathRouting(b) => ("MultipathRouting", Value::from(*b)),
            Self::MultipathTcpLink(l) => ("MultipathTcpLink", Value::from(l.as_str())),
            Self::Remove => return None,
        })
    }
}

type Dict = std::collections::HashMap<&'static str, Value<'static>>;

fn ipv4_dict(c: &Ipv4Config) -> Value<'static> {
    let mut d = Dict::new();
    match c {
        Ipv4Config::Off => {
            d.insert("Method", Value::from("off"));
        }
        Ipv4Config::Dhcp => {
            d.insert("Method", Value::from("dhcp"));
        }
        Ipv4Config::Manual {
            address,
            netmask,
            gateway,
        } => {
            d.insert("Method", Value::from("manual"));
            d.insert("Address", Value::from(address.to_string()));
            if let Some(m) = netmask {
                d.insert("Netmask", Value::from(m.to_string()));
            }
            if let Some(g) = gateway {
                d.insert("Gateway", Value::from(g.to_string()));
            }
        }
    }
    Value::from(d)
}

fn ipv6_dict(c: &Ipv6Config) -> Value<'static> {
    let mut d = Dict::new();
    match c {
        Ipv6Config::Off => {
            d.insert("Method", Value::from("off"));
        }
        Ipv6Config::Auto { privacy } => {
            d.insert("Method", Value::from("auto"));
            if let Some(p) = privacy {
                d.insert("Privacy", Value::from(p.as_str()));
            }
        }
        Ipv6Config::Manual {
            address,
            prefix_length,
            gateway,
        } => {
            d.insert("Method", Value::from("manual"));
            d.insert("Address", Value::from(address.to_string()));
            if let Some(p) = prefix_length {
                d.insert("PrefixLength", Value::U8(*p));
            }
            if let Some(g) = gateway {
                d.insert("Gateway", Value::from(g.to_string()));
            }
        }
    }
    Value::from(d)
}

/// A command line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The first word is no command.
    UnknownCommand(String),
    /// The command (or option) named in `word` has wrong arguments.
    BadArguments {
        /// The command or option at fault, as typed.
        word: String,
        /// What is wrong.
        reason: String,
    },
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownCommand(c) => write!(f, "Error '{c}': Unknown command"),
            Self::BadArguments { word, reason } => write!(f, "Error '{word}': {reason}"),
        }
    }
}

impl std::error::Error for ParseError {}

pub(super) fn bad(word: &str, reason: impl Into<String>) -> ParseError {
    ParseError::BadArguments {
        word: word.to_owned(),
        reason: reason.into(),
    }
}

/// Parses one command line (`args[0]` is the command).
pub fn parse(args: &[String]) -> Result<Command, ParseError> {
    let Some((cmd, rest)) = args.split_first() else {
        return Ok(Command::Help);
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let cmd = cmd.as_str();
    let bus = |c| Ok(Command::Bus(c));
    match cmd {
        "state" => match rest.as_slice() {
            [] => bus(BusCommand::State),
            ["--all" | "-a"] => bus(BusCommand::StateAll),
            _ => Err(bad(cmd, "Expected nothing or --all")),
        },
        "technologies" => no_args(cmd, &rest).and_then(|()| bus(BusCommand::Technologies)),
        "clock" => no_args(cmd, &rest).and_then(|()| bus(BusCommand::Clock)),
        "services" => match rest.as_slice() {
            [] => bus(BusCommand::Services(None)),
            [id] | ["--properties" | "-p", id] => {
                bus(BusCommand::Services(Some(service_id(cmd, id)?)))
            }
            _ => Err(bad(cmd, "Too many arguments")),
        },
        "enable" | "disable" => {
            let [tech] = rest.as_slice() else {
                return Err(bad(cmd, "Expected one technology or 'offline'"));
            };
            let target = if *tech == "offline" {
                PowerTarget::Offline
            } else if names::is_valid_path_element(tech) {
                PowerTarget::Technology((*tech).to_owned())
            } else {
                return Err(bad(cmd, format!("Invalid technology '{tech}'")));
            };
            bus(BusCommand::Power {
                target,
                on: cmd == "enable",
            })
        }
        "connect" | "disconnect" => {
            let [id] = rest.as_slice() else {
                return Err(bad(cmd, "Expected one service"));
            };
            let id = service_id(cmd, id)?;
            bus(if cmd == "connect" {
                BusCommand::Connect(id)
            } else {
                BusCommand::Disconnect(id)
            })
        }
        "move-before" | "move-after" => {
            let [id, target] = rest.as_slice() else {
                return Err(bad(cmd, "Expected a service and a target service"));
            };
            bus(BusCommand::Move {
                service: service_id(cmd, id)?,
                target: service_id(cmd, target)?,
                position: if cmd == "move-before" {
                    MovePosition::Before
                } else {
                    MovePosition::After
                },
            })
        }
        "tether" => {
            let (tech, word, ap) =
                match rest.as_slice() {
                    [tech, word] => (*tech, *word, None),
                    [tech, word, ssid, pass] => (*tech, *word, Some((*ssid, *pass, None))),
                    [tech, word, ssid, pass, freq] => {
                        let f = freq
                            .parse::<i32>()
                            .map_err(|_| bad(cmd, format!("Invalid frequency '{freq}'")))?;
                        (*tech, *word, Some((*ssid, *pass, Some(f))))
                    }
                    _ => return Err(bad(
                        cmd,
                        "Expected <technology> on|off, or wifi on|off <ssid> <passphrase> [<freq>]",
                    )),
                };
            if !names::is_valid_path_element(tech) {
                return Err(bad(cmd, format!("Invalid technology '{tech}'")));
            }
            let on = parse_bool(word)
                .ok_or_else(|| bad(cmd, format!("Expected on or off, not '{word}'")))?;
            bus(BusCommand::Tether {
                tech: tech.to_owned(),
                on,
                ap: ap.map(|(a, b, f)| (a.to_owned(), b.to_owned(), f)),
            })
        }
        "tethering_clients" => no_args(cmd, &rest).and_then(|()| bus(BusCommand::TetheringClients)),
        "scan" => match rest.as_slice() {
            [tech] if names::is_valid_path_element(tech) => {
                bus(BusCommand::Scan((*tech).to_owned()))
            }
            [tech] => Err(bad(cmd, format!("Invalid technology '{tech}'"))),
            _ => Err(bad(cmd, "Expected one technology")),
        },
        "agent" => match rest.as_slice() {
            [word] => parse_bool(word)
                .map(Command::Agent)
                .ok_or_else(|| bad(cmd, format!("Expected on or off, not '{word}'"))),
            _ => Err(bad(cmd, "Expected on or off")),
        },
        "config" => parse_config(&rest),
        "monitor" => parse_monitor(&rest),
        "session" => parse_session(&rest),
        "help" => Ok(Command::Help),
        "exit" | "quit" => Ok(Command::Exit),
        _ => Err(ParseError::UnknownCommand(cmd.to_owned())),
    }
}

pub(super) fn no_args(cmd: &str, rest: &[&str]) -> Result<(), ParseError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(bad(cmd, "Too many arguments"))
    }
}

fn service_id(word: &str, id: &str) -> Result<ServiceId, ParseError> {
    ServiceId::new(id).ok_or_else(|| bad(word, format!("Invalid service '{id}'")))
}

/// connmanctl's boolean words.
fn parse_bool(word: &str) -> Option<bool> {
    const NO: [&str; 7] = ["no", "false", "off", "disable", "n", "f", "0"];
    const YES: [&str; 7] = ["yes", "true", "on", "enable", "y", "t", "1"];
    if NO.iter().any(|w| w.eq_ignore_ascii_case(word)) {
        Some(false)
    } else if YES.iter().any(|w| w.eq_ignore_ascii_case(word)) {
        Some(true)
    } else {
        None
    }
}

/// The long name of a `config` option word, long or short form.
fn config_option_name(word: &str) -> Option<&'static str> {
    Some(match word {
        "--nameservers" | "-n" => "--nameservers",
        "--timeservers" | "-t" => "--timeservers",
        "--domains" | "-d" => "--domains",
        "--ipv4" | "-i" => "--ipv4",
        "--ipv6" | "-v" => "--ipv6",
        "--autoconnect" | "-a" => "--autoconnect",
        "--remove" | "-r" => "--remove",
        "--mpath_routing" | "-M" => "--mpath_routing",
        // No short form: the fork's `-m` is upstream's `--mdns`.
        "--mpath_tcp_link" => "--mpath_tcp_link",
        _ => return None,
    })
}

/// An option word: `-x` or `--xyz`, but not a negative number.
fn is_option_word(word: &str) -> bool {
    word.starts_with('-') && word.len() > 1 && !word[1..].starts_with(|c: char| c.is_ascii_digit())
}

/// Splits option words into `(option, values)` runs: an option's values go up to the next
/// option word.
pub(super) fn option_runs<'a>(mut words: &'a [&'a str]) -> Vec<(&'a str, &'a [&'a str])> {
    let mut runs = Vec::new();
    while let Some((word, after)) = words.split_first() {
        let n = after
            .iter()
            .position(|w| is_option_word(w))
            .unwrap_or(after.len());
        let (values, next) = after.split_at(n);
        runs.push((*word, values));
        words = next;
    }
    runs
}

fn parse_config(rest: &[&str]) -> Result<Command, ParseError> {
    let Some((id, words)) = rest.split_first() else {
        return Err(bad("config", "Expected a service and options"));
    };
    let service = service_id("config", id)?;
    let options = option_runs(words)
        .into_iter()
        .map(|(word, values)| {
            let name = config_option_name(word).ok_or_else(|| bad(word, "Unknown option"))?;
            parse_config_option(name, values)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if options.is_empty() {
        return Err(bad("config", "Expected at least one option"));
    }
    Ok(Command::Bus(BusCommand::Config { service, options }))
}

/// The single yes/no value of option `name`.
pub(super) fn one_bool(name: &str, values: &[&str]) -> Result<bool, ParseError> {
    match values {
        [v] => parse_bool(v).ok_or_else(|| bad(name, format!("Expected yes or no, not '{v}'"))),
        _ => Err(bad(name, "Expected yes or no")),
    }
}

fn addr<A: core::str::FromStr>(name: &str, what: &str, s: &str) -> Result<A, ParseError> {
    s.parse()
        .map_err(|_| bad(name, format!("Invalid {what} '{s}'")))
}

/// `values` as owned strings, for list options.
pub(super) fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn parse_config_option(name: &'static str, values: &[&str]) -> Result<ConfigOption, ParseError> {
    Ok(match name {
        "--nameservers" => ConfigOption::Nameservers(owned(values)),
        "--timeservers" => ConfigOption::Timeservers(owned(values)),
        "--domains" => ConfigOption::Domains(owned(values)),
        "--autoconnect" => ConfigOption::AutoConnect(one_bool(name, values)?),
        "--mpath_routing" => ConfigOption::MultipathRouting(one_bool(name, values)?),
        "--mpath_tcp_link" => ConfigOption::MultipathTcpLink(match values {
            ["on"] => MptcpLink::On,
            ["backup"] => MptcpLink::Backup,
            ["off"] => MptcpLink::Off,
            _ => return Err(bad(name, "Expected on, backup or off")),
        }),
        "--remove" => {
            if !values.is_empty() {
                return Err(bad(name, "Takes no value"));
            }
            ConfigOption::Remove
        }
        "--ipv4" => ConfigOption::Ipv4(match values {
            ["off"] => Ipv4Config::Off,
            ["dhcp"] => Ipv4Config::Dhcp,
            ["manual", address, more @ ..] if more.len() <= 2 => Ipv4Config::Manual {
                address: addr(name, "address", address)?,
                netmask: more
                    .first()
                    .map(|m| addr(name, "netmask", m))
                    .transpose()?,
                gateway: more
                    .get(1)
                    .map(|g| addr(name, "gateway", g))
                    .transpose()?,
            },
            _ => {
                return Err(bad(
                    name,
                    "Expected off, dhcp or manual <address> <netmask> <gateway>",
                ))
            }
        }),
        "--ipv6" => ConfigOption::Ipv6(match values {
            ["off"] => Ipv6Config::Off,
            ["auto"] => Ipv6Config::Auto { privacy: None },
            ["auto", p] => Ipv6Config::Auto {
                privacy: Some(match *p {
                    "preferred" | "prefered" => Ipv6Privacy::Preferred,
                    other => match parse_bool(other) {
                        Some(true) => Ipv6Privacy::Enabled,
                        Some(false) => Ipv6Privacy::Disabled,
                        None => {
                            return Err(bad(
                                name,
                                format!("Expected enable, disable or preferred, not '{p}'"),
                            ))
                        }
                    },
                }),
            },
            ["manual", address, more @ ..] if more.len() <= 2 => Ipv6Config::Manual {
                address: addr(name, "address", address)?,
                prefix_length: more
                    .first()
                    .map(|p| match p.parse::<u8>() {
                        Ok(n) if n <= 128 => Ok(n),
                        _ => Err(bad(name, format!("Invalid prefix length '{p}'"))),
                    })
                    .transpose()?,
                gateway: more
                    .get(1)
                    .map(|g| addr(name, "gateway", g))
                    .transpose()?,
            },
            _ => {
                return Err(bad(
                    name,
                    "Expected off, auto [enable|disable|preferred] or manual <address> <prefixlength> <gateway>",
                ))
            }
        }),
        _ => return Err(bad(name, "Unknown option")),
    })
}

fn parse_monitor(rest: &[&str]) -> Result<Command, ParseError> {
    let scope_of = |w: &str| match w {
        "--services" | "-s" => Some(MonitorScope::Services),
        "--tech" | "-c" => Some(MonitorScope::Technologies),
        "--manager" | "-m" => Some(MonitorScope::Manager),
        _ => None,
    };
    let on_of =
        |w: &str| parse_bool(w).ok_or_else(|| bad("monitor", format!("Expected 'off', not '{w}'")));
    let (scope, on) = match rest {
        [] => (MonitorScope::All, true),
        [w] => match scope_of(w) {
            Some(s) => (s, true),
            None => (MonitorScope::All, on_of(w)?),
        },
        [w, v] => match scope_of(w) {
            Some(s) => (s, on_of(v)?),
            None => return Err(bad("monitor", format!("Unknown option '{w}'"))),
        },
        _ => return Err(bad("monitor", "Too many arguments")),
    };
    Ok(Command::Monitor { scope, on })
}

fn parse_session(rest: &[&str]) -> Result<Command, ParseError> {
    match rest {
        ["create", options @ ..] => session::parse_create(options).map(Command::Session),
        ["list"] => Ok(Command::Bus(BusCommand::SessionList)),
        ["list", ..] => Err(bad("session list", "Too many arguments")),
        ["destroy", path] => ObjectPath::try_from(*path)
            .map(|p| Command::Bus(BusCommand::SessionDestroy(p.into())))
            .map_err(|_| bad("session destroy", format!("Invalid object path '{path}'"))),
        ["destroy", ..] => Err(bad("session destroy", "Expected one session path")),
        _ => Err(bad("session", "Expected create, list or destroy")),
    }
}

/// A failed command, displayed the way connmanctl reports it.
#[derive(Debug)]
pub enum CtlError {
    /// The command line was wrong.
    Parse(ParseError),
    /// The system bus could not be reached.
    Connect(zbus::Error),
    /// Nobody owns `net.connman`.
    NotRunning,
    /// A call failed; `context` is what precedes the colon (empty: `Error: reason`).
    Call {
        /// The technology, path or service the call was about.
        context: String,
        /// The error, humanised.
        reason: String,
    },
    /// Some options of a `config` failed (the others were applied).
    Config(Vec<(String, String)>),
    /// Writing the output failed (e.g. a closed pipe).
    Output(std::io::Error),
    /// A message shown as it is (connmanctl's `Agent already registered` and the like).
    Message(String),
}

impl core::fmt::Display for CtlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "{e}"),
            Self::Connect(e) => write!(f, "Error: cannot connect to the system bus: {e}"),
            Self::NotRunning => {
                f.write_str("pathman is not running (net.connman not on the system bus)")
            }
            Self::Call { context, reason } if context.is_empty() => write!(f, "Error: {reason}"),
            Self::Call { context, reason } => write!(f, "Error {context}: {reason}"),
            Self::Config(failures) => {
                for (i, (context, reason)) in failures.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "Error {context}: {reason}")?;
                }
                Ok(())
            }
            Self::Output(e) => write!(f, "Error: cannot write output: {e}"),
            Self::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CtlError {}

impl From<ParseError> for CtlError {
    fn from(e: ParseError) -> Self {
        Self::Parse(e)
    }
}

impl From<std::io::Error> for CtlError {
    fn from(e: std::io::Error) -> Self {
        Self::Output(e)
    }
}

/// Why a call failed, before it is given a context.
pub(super) enum CallError {
    /// Nobody owns `net.connman`.
    NotRunning,
    /// Any other failure, humanised.
    Failed(String),
}

impl CallError {
    pub(super) fn in_context(self, context: impl Into<String>) -> CtlError {
        match self {
            Self::NotRunning => CtlError::NotRunning,
            Self::Failed(reason) => CtlError::Call {
                context: context.into(),
                reason,
            },
        }
    }
}

/// Error names the bus daemon uses when nobody owns the destination.
const NOT_RUNNING_ERRORS: [&str; 2] = [
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
];

fn classify(e: zbus::Error) -> CallError {
    let (name, message) = match &e {
        zbus::Error::MethodError(name, message, _) => (name.as_str().to_owned(), message.clone()),
        zbus::Error::FDO(fdo) => {
            use zbus::DBusError as _;
            (
                fdo.name().as_str().to_owned(),
                fdo.description().map(str::to_owned),
            )
        }
        other => return CallError::Failed(other.to_string()),
    };
    if NOT_RUNNING_ERRORS.contains(&name.as_str()) {
        CallError::NotRunning
    } else {
        CallError::Failed(format::error_text(&name, message.as_deref()))
    }
}

/// How long a call may take; connmanctl's limit too. Connect returns only once the service is
/// connected or failed, so this is generous.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Calls `member` on pathman and decodes the reply as `R`.
pub(super) async fn call<R>(
    conn: &Connection,
    path: &str,
    interface: &str,
    member: &str,
    body: &Args<'_>,
) -> Result<R, CallError>
where
    R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
{
    let reply = call_raw(conn, path, interface, member, body).await?;
    reply
        .body()
        .deserialize::<R>()
        .map_err(|e| CallError::Failed(format!("unexpected reply to {member}: {e}")))
}

/// [`call`] up to the reply, the same code for every reply type.
async fn call_raw(
    conn: &Connection,
    path: &str,
    interface: &str,
    member: &str,
    body: &Args<'_>,
) -> Result<zbus::Message, CallError> {
    let reply = conn.call_method(Some(names::BUS_NAME), path, Some(interface), member, body);
    let timeout = async {
        smol::Timer::after(CALL_TIMEOUT).await;
        Err(CallError::Failed(format!(
            "no reply to {member} within {} s",
            CALL_TIMEOUT.as_secs()
        )))
    };
    smol::future::or(async { reply.await.map_err(classify) }, timeout).await
}

/// An object and interface to call.
type Target<'a> = (&'a str, &'a str);

const MANAGER: Target<'static> = (names::MANAGER_PATH, names::MANAGER_INTERFACE);
const DEBUG: Target<'static> = (names::MANAGER_PATH, names::DEBUG_INTERFACE);
const CLOCK: Target<'static> = (names::CLOCK_PATH, names::CLOCK_INTERFACE);

/// Calls `member` without arguments on `target`; a failure is shown as `Error: reason`.
async fn get<R>(
    conn: &Connection,
    (path, interface): Target<'_>,
    member: &str,
) -> Result<R, CtlError>
where
    R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
{
    call(conn, path, interface, member, &Args::NONE)
        .await
        .map_err(|e| e.in_context(""))
}

async fn set_property(
    conn: &Connection,
    path: &str,
    interface: &str,
    name: &str,
    value: &Value<'_>,
) -> Result<(), CallError> {
    // Holds no file descriptor, so the copy cannot fail.
    let value = value
        .try_clone()
        .map_err(|e| CallError::Failed(format!("{name}: {e}")))?;
    call::<()>(
        conn,
        path,
        interface,
        "SetProperty",
        &Args::of((name, value)),
    )
    .await
}

/// Runs `cmd` and writes its output to `out`; errors are returned, not printed.
pub async fn execute(
    conn: &Connection,
    cmd: &BusCommand,
    out: &mut dyn Write,
) -> Result<(), CtlError> {
    match cmd {
        BusCommand::State | BusCommand::Clock => {
            let target = if *cmd == BusCommand::State {
                MANAGER
            } else {
                CLOCK
            };
            let props: Properties = get(conn, target, "GetProperties").await?;
            out.write_all(format::properties(&props).as_bytes())?;
        }
        BusCommand::StateAll => {
            let text: String = get(conn, DEBUG, "GetState").await?;
            out.write_all(text.as_bytes())?;
        }
        BusCommand::Technologies => {
            let techs: Vec<ObjectEntry> = get(conn, MANAGER, "GetTechnologies").await?;
            for (path, props) in &techs {
                out.write_all(format::object_properties(path.as_str(), props).as_bytes())?;
            }
        }
        BusCommand::Services(None) => {
            let services: Vec<ObjectEntry> = get(conn, MANAGER, "GetServices").await?;
            out.write_all(format::services_list(&services).as_bytes())?;
        }
        BusCommand::Services(Some(id)) => {
            let path = id.path();
            let props: Properties = call(
                conn,
                &path,
                names::SERVICE_INTERFACE,
                "GetProperties",
                &Args::NONE,
            )
            .await
            .map_err(|e| e.in_context(id.as_str()))?;
            out.write_all(format::object_properties(&path, &props).as_bytes())?;
        }
        BusCommand::Power { target, on } => {
            let (path, interface, property, word) = match target {
                PowerTarget::Technology(t) => (
                    names::technology_path(t),
                    names::TECHNOLOGY_INTERFACE,
                    "Powered",
                    t.as_str(),
                ),
                PowerTarget::Offline => (
                    names::MANAGER_PATH.to_owned(),
                    names::MANAGER_INTERFACE,
                    "OfflineMode",
                    "offline",
                ),
            };
            set_property(conn, &path, interface, property, &Value::from(*on))
                .await
                .map_err(|e| e.in_context(word))?;
            writeln!(out, "{} {word}", if *on { "Enabled" } else { "Disabled" })?;
        }
        BusCommand::Tether { tech, on, ap } => {
            let path = names::technology_path(tech);
            let iface = names::TECHNOLOGY_INTERFACE;
            if let Some((ssid, pass, freq)) = ap {
                set_property(
                    conn,
                    &path,
                    iface,
                    "TetheringIdentifier",
                    &Value::from(ssid.as_str()),
                )
                .await
                .map_err(|e| e.in_context(tech.as_str()))?;
                set_property(
                    conn,
                    &path,
                    iface,
                    "TetheringPassphrase",
                    &Value::from(pass.as_str()),
                )
                .await
                .map_err(|e| e.in_context(tech.as_str()))?;
                if let Some(f) = freq {
                    set_property(conn, &path, iface, "TetheringFreq", &Value::from(*f))
                        .await
                        .map_err(|e| e.in_context(tech.as_str()))?;
                }
            }
            set_property(conn, &path, iface, "Tethering", &Value::from(*on))
                .await
                .map_err(|e| e.in_context(tech.as_str()))?;
            writeln!(
                out,
                "{} tethering for {tech}",
                if *on { "Enabled" } else { "Disabled" }
            )?;
        }
        BusCommand::TetheringClients => {
            let clients: Vec<String> = get(conn, MANAGER, "GetTetheringClients").await?;
            for c in clients {
                writeln!(out, "{c}")?;
            }
        }
        BusCommand::Scan(tech) => {
            let path = names::technology_path(tech);
            call::<()>(
                conn,
                &path,
                names::TECHNOLOGY_INTERFACE,
                "Scan",
                &Args::NONE,
            )
            .await
            .map_err(|e| e.in_context(path.as_str()))?;
            writeln!(out, "Scan completed for {tech}")?;
        }
        BusCommand::Connect(id) | BusCommand::Disconnect(id) => {
            let (member, done) = match cmd {
                BusCommand::Connect(_) => ("Connect", "Connected"),
                _ => ("Disconnect", "Disconnected"),
            };
            let path = id.path();
            call::<()>(conn, &path, names::SERVICE_INTERFACE, member, &Args::NONE)
                .await
                .map_err(|e| e.in_context(path.as_str()))?;
            writeln!(out, "{done} {}", id.as_str())?;
        }
        BusCommand::Move {
            service,
            target,
            position,
        } => {
            let (member, word) = match position {
                MovePosition::Before => ("MoveBefore", "before"),
                MovePosition::After => ("MoveAfter", "after"),
            };
            let path = service.path();
            let target_path =
                object_path(&target.path()).map_err(|e| e.in_context(path.as_str()))?;
            call::<()>(
                conn,
                &path,
                names::SERVICE_INTERFACE,
                member,
                &Args::of((target_path,)),
            )
            .await
            .map_err(|e| e.in_context(path.as_str()))?;
            writeln!(out, "Moved {} {word} {}", service.as_str(), target.as_str())?;
        }
        BusCommand::Config { service, options } => {
            let path = service.path();
            let mut failures = Vec::new();
            for option in options {
                let result = match option.property() {
                    Some((name, value)) => {
                        set_property(conn, &path, names::SERVICE_INTERFACE, name, &value).await
                    }
                    None => {
                        call::<()>(conn, &path, names::SERVICE_INTERFACE, "Remove", &Args::NONE)
                            .await
                    }
                };
                match result {
                    Ok(()) => {}
                    Err(CallError::NotRunning) => return Err(CtlError::NotRunning),
                    Err(CallError::Failed(reason)) => failures.push((
                        format!("{} {}", service.as_str(), option.option_name()),
                        reason,
                    )),
                }
            }
            if !failures.is_empty() {
                return Err(CtlError::Config(failures));
            }
        }
        BusCommand::SessionList => {
            let sessions: Vec<OwnedObjectPath> = get(conn, MANAGER, "GetSessions").await?;
            for path in &sessions {
                writeln!(out, "{}", path.as_str())?;
            }
        }
        BusCommand::SessionDestroy(path) => {
            let (manager, interface) = MANAGER;
            call::<()>(
                conn,
                manager,
                interface,
                "DestroySession",
                &Args::of((path.clone(),)),
            )
            .await
            .map_err(|e| e.in_context(path.as_str()))?;
            writeln!(out, "Destroyed session {}", path.as_str())?;
        }
    }
    out.flush()?;
    Ok(())
}

fn object_path(path: &str) -> Result<OwnedObjectPath, CallError> {
    ObjectPath::try_from(path)
        .map(OwnedObjectPath::from)
        .map_err(|e| CallError::Failed(format!("invalid object path {path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command, ParseError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    fn id(s: &str) -> ServiceId {
        match ServiceId::new(s) {
            Some(id) => id,
            None => panic!("bad test id {s}"),
        }
    }

    fn config(line: &str) -> Vec<ConfigOption> {
        match p(line) {
            Ok(Command::Bus(BusCommand::Config { options, .. })) => options,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn simple_commands() {
        assert_eq!(p("state"), Ok(Command::Bus(BusCommand::State)));
        assert_eq!(p("state --all"), Ok(Command::Bus(BusCommand::StateAll)));
        assert_eq!(
            p("technologies"),
            Ok(Command::Bus(BusCommand::Technologies))
        );
        assert_eq!(p("clock"), Ok(Command::Bus(BusCommand::Clock)));
        assert_eq!(p("services"), Ok(Command::Bus(BusCommand::Services(None))));
        assert_eq!(
            p("services ethernet_1_cable"),
            Ok(Command::Bus(BusCommand::Services(Some(id(
                "ethernet_1_cable"
            )))))
        );
        assert_eq!(
            p("services --properties ethernet_1_cable"),
            Ok(Command::Bus(BusCommand::Services(Some(id(
                "ethernet_1_cable"
            )))))
        );
        assert_eq!(p("help"), Ok(Command::Help));
        assert_eq!(p("exit"), Ok(Command::Exit));
        assert_eq!(p("quit"), Ok(Command::Exit));
        assert_eq!(p(""), Ok(Command::Help));
    }

    #[test]
    fn errors() {
        assert_eq!(
            p("frobnicate"),
            Err(ParseError::UnknownCommand("frobnicate".into()))
        );
        assert_eq!(
            p("frobnicate").map_err(|e| e.to_string()),
            Err("Error 'frobnicate': Unknown command".into())
        );
        for line in [
            "state now",
            "enable",
            "enable a b",
            "enable wi-fi",
            "connect",
            "connect ../x",
            "move-before a",
            "services a b",
            "scan",
            "scan wifi ethernet",
            "scan ../wifi",
            "agent",
            "agent maybe",
            "agent on now",
        ] {
            assert!(
                matches!(p(line), Err(ParseError::BadArguments { .. })),
                "{line}"
            );
        }
    }

    #[test]
    fn scan_and_agent() {
        assert_eq!(
            p("scan wifi"),
            Ok(Command::Bus(BusCommand::Scan("wifi".into())))
        );
        assert_eq!(p("agent on"), Ok(Command::Agent(true)));
        assert_eq!(p("agent yes"), Ok(Command::Agent(true)));
        assert_eq!(p("agent off"), Ok(Command::Agent(false)));
        assert_eq!(
            p("agent sideways").map_err(|e| e.to_string()),
            Err("Error 'agent': Expected on or off, not 'sideways'".into())
        );
        assert_eq!(
            CtlError::Message("Agent not registered".into()).to_string(),
            "Agent not registered"
        );
    }

    #[test]
    fn power_and_moves() {
        assert_eq!(
            p("enable ethernet"),
            Ok(Command::Bus(BusCommand::Power {
                target: PowerTarget::Technology("ethernet".into()),
                on: true
            }))
        );
        assert_eq!(
            p("disable offline"),
            Ok(Command::Bus(BusCommand::Power {
                target: PowerTarget::Offline,
                on: false
            }))
        );
        assert_eq!(
            p("move-after a_1 b_2"),
            Ok(Command::Bus(BusCommand::Move {
                service: id("a_1"),
                target: id("b_2"),
                position: MovePosition::After
            }))
        );
        assert_eq!(
            p("connect s_1"),
            Ok(Command::Bus(BusCommand::Connect(id("s_1"))))
        );
        assert_eq!(
            p("disconnect s_1"),
            Ok(Command::Bus(BusCommand::Disconnect(id("s_1"))))
        );
    }

    #[test]
    fn config_options() {
        assert_eq!(
            config("config s --ipv4 manual 198.18.1.5 255.255.255.0 198.18.1.1 --nameservers 1.1.1.1 9.9.9.9 --autoconnect no"),
            vec![
                ConfigOption::Ipv4(Ipv4Config::Manual {
                    address: Ipv4Addr::new(198, 18, 1, 5),
                    netmask: Some(Ipv4Addr::new(255, 255, 255, 0)),
                    gateway: Some(Ipv4Addr::new(198, 18, 1, 1)),
                }),
                ConfigOption::Nameservers(vec!["1.1.1.1".into(), "9.9.9.9".into()]),
                ConfigOption::AutoConnect(false),
            ]
        );
        assert_eq!(
            config("config s --ipv4 dhcp"),
            vec![ConfigOption::Ipv4(Ipv4Config::Dhcp)]
        );
        assert_eq!(
            config("config s -i off"),
            vec![ConfigOption::Ipv4(Ipv4Config::Off)]
        );
        assert_eq!(
            config("config s --ipv6 auto preferred --mpath_routing yes --mpath_tcp_link backup"),
            vec![
                ConfigOption::Ipv6(Ipv6Config::Auto {
                    privacy: Some(Ipv6Privacy::Preferred)
                }),
                ConfigOption::MultipathRouting(true),
                ConfigOption::MultipathTcpLink(MptcpLink::Backup),
            ]
        );
        assert_eq!(
            config("config s --ipv6 manual fd18:1::5 64 fd18:1::1"),
            vec![ConfigOption::Ipv6(Ipv6Config::Manual {
                address: "fd18:1::5".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
                prefix_length: Some(64),
                gateway: Some("fd18:1::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)),
            })]
        );
        assert_eq!(
            config("config s --nameservers --remove"),
            vec![ConfigOption::Nameservers(vec![]), ConfigOption::Remove]
        );
        assert_eq!(
            config("config s --timeservers ntp.lab.test -d lab.test"),
            vec![
                ConfigOption::Timeservers(vec!["ntp.lab.test".into()]),
                ConfigOption::Domains(vec!["lab.test".into()]),
            ]
        );
    }

    #[test]
    fn config_errors_name_the_option() {
        let err = |line: &str| p(line).map_err(|e| e.to_string()).err();
        assert_eq!(
            err("config s --bogus"),
            Some("Error '--bogus': Unknown option".into())
        );
        assert_eq!(
            err("config s --ipv4 manual 300.1.1.1"),
            Some("Error '--ipv4': Invalid address '300.1.1.1'".into())
        );
        for line in [
            "config s --ipv4 static",
            "config s --ipv4 manual 1.2.3.4 255.0.0.0 1.2.3.1 extra",
            "config s --ipv6 manual fd18::1 129",
            "config s --ipv6 auto sometimes",
            "config s --autoconnect maybe",
            "config s --autoconnect",
            "config s --mpath_tcp_link sideways",
            "config s --remove now",
            "config s",
            "config",
            "config bad-id --remove",
        ] {
            assert!(err(line).is_some(), "{line}");
        }
    }

    #[test]
    fn config_values_on_the_bus() {
        let opt = ConfigOption::Ipv4(Ipv4Config::Manual {
            address: Ipv4Addr::new(10, 0, 0, 2),
            netmask: Some(Ipv4Addr::new(255, 0, 0, 0)),
            gateway: None,
        });
        let Some((name, value)) = opt.property() else {
            panic!("ipv4 is a property");
        };
        assert_eq!(name, "IPv4.Configuration");
        assert_eq!(value.value_signature().to_string(), "a{sv}");
        assert_eq!(
            format::value(&value),
            "[ Address=10.0.0.2, Method=manual, Netmask=255.0.0.0 ]"
        );
        let opt = ConfigOption::Ipv6(Ipv6Config::Manual {
            address: Ipv6Addr::LOCALHOST,
            prefix_length: Some(128),
            gateway: None,
        });
        let Some((_, value)) = opt.property() else {
            panic!("ipv6 is a property");
        };
        assert_eq!(
            format::value(&value),
            "[ Address=::1, Method=manual, PrefixLength=128 ]"
        );
        let Some((name, value)) = ConfigOption::Nameservers(vec![]).property() else {
            panic!("nameservers is a property");
        };
        assert_eq!(name, "Nameservers.Configuration");
        assert_eq!(value.value_signature().to_string(), "as");
        let Some((name, value)) = ConfigOption::MultipathTcpLink(MptcpLink::Off).property() else {
            panic!("mptcp link is a property");
        };
        assert_eq!(
            (name, format::value(&value)),
            ("MultipathTcpLink", "off".into())
        );
        assert_eq!(ConfigOption::Remove.property(), None);
    }

    #[test]
    fn monitor_arguments() {
        assert_eq!(
            p("monitor"),
            Ok(Command::Monitor {
                scope: MonitorScope::All,
                on: true
            })
        );
        assert_eq!(
            p("monitor off"),
            Ok(Command::Monitor {
                scope: MonitorScope::All,
                on: false
            })
        );
        assert_eq!(
            p("monitor --services"),
            Ok(Command::Monitor {
                scope: MonitorScope::Services,
                on: true
            })
        );
        assert_eq!(
            p("monitor --tech off"),
            Ok(Command::Monitor {
                scope: MonitorScope::Technologies,
                on: false
            })
        );
        assert!(p("monitor --bogus off").is_err());
        assert!(p("monitor sideways").is_err());
    }

    #[test]
    fn session_commands() {
        assert_eq!(p("session list"), Ok(Command::Bus(BusCommand::SessionList)));
        let Ok(Command::Bus(BusCommand::SessionDestroy(path))) = p("session destroy /sessions/3")
        else {
            panic!("session destroy");
        };
        assert_eq!(path.as_str(), "/sessions/3");
        assert!(matches!(
            p("session create --bearers ethernet --connect"),
            Ok(Command::Session(session::CreateOptions {
                connect: true,
                ..
            }))
        ));
        assert_eq!(
            p("session create").map(|_| ()),
            Ok(()),
            "no options: the daemon's defaults"
        );
        let err = |line: &str| p(line).map_err(|e| e.to_string()).err();
        assert_eq!(
            err("session destroy sessions/3"),
            Some("Error 'session destroy': Invalid object path 'sessions/3'".into())
        );
        assert!(err("session destroy").is_some());
        assert!(err("session list now").is_some());
        assert!(err("session").is_some());
        assert!(err("session on").is_some());
        assert_eq!(
            err("session create --bogus"),
            Some("Error '--bogus': Unknown option".into())
        );
    }

    #[test]
    fn error_display() {
        assert_eq!(
            CtlError::NotRunning.to_string(),
            "pathman is not running (net.connman not on the system bus)"
        );
        assert_eq!(
            CtlError::Call {
                context: "ethernet".into(),
                reason: "Already enabled".into()
            }
            .to_string(),
            "Error ethernet: Already enabled"
        );
        assert_eq!(
            CtlError::Call {
                context: String::new(),
                reason: "Not found".into()
            }
            .to_string(),
            "Error: Not found"
        );
        assert_eq!(
            CtlError::Config(vec![
                ("s --ipv4".into(), "Invalid arguments".into()),
                ("s --remove".into(), "Not supported".into())
            ])
            .to_string(),
            "Error s --ipv4: Invalid arguments\nError s --remove: Not supported"
        );
    }
}
