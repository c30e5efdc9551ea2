//! Names on the bus: the well-known name, interfaces, object paths and error names of ConnMan's
//! D-Bus API (`reference/connman.md` §1), shared by the daemon and pathmanctl so the two can never
//! disagree on a spelling.

/// The well-known bus name pathman owns on the system bus.
pub const BUS_NAME: &str = "net.connman";

/// Manager interface, served at [`MANAGER_PATH`].
pub const MANAGER_INTERFACE: &str = "net.connman.Manager";
/// Technology interface, served at [`technology_path`].
pub const TECHNOLOGY_INTERFACE: &str = "net.connman.Technology";
/// Service interface, served at [`service_path`].
pub const SERVICE_INTERFACE: &str = "net.connman.Service";
/// Session interface, served at a path under [`SESSION_PATH_PREFIX`].
pub const SESSION_INTERFACE: &str = "net.connman.Session";
/// Notification interface, served by a session's client at its notifier path.
pub const NOTIFICATION_INTERFACE: &str = "net.connman.Notification";
/// Clock interface, served at [`CLOCK_PATH`].
pub const CLOCK_INTERFACE: &str = "net.connman.Clock";
/// Agent interface, served by a client that registered an agent.
pub const AGENT_INTERFACE: &str = "net.connman.Agent";
/// pathman's own debug interface (the state dump), at `/`.
pub const DEBUG_INTERFACE: &str = "net.connman.pathman.Debug";
/// Counter interface, served by a client that registered a counter.
pub const COUNTER_INTERFACE: &str = "net.connman.Counter";

/// Object path of the Manager.
pub const MANAGER_PATH: &str = "/";
/// Object path of the Clock (the same object as the Manager, as in ConnMan).
pub const CLOCK_PATH: &str = "/";
/// Prefix of every technology object path; the technology type follows.
pub const TECHNOLOGY_PATH_PREFIX: &str = "/net/connman/technology/";
/// Prefix of every service object path; the service identifier follows.
pub const SERVICE_PATH_PREFIX: &str = "/net/connman/service/";
/// Prefix of every session object path.
pub const SESSION_PATH_PREFIX: &str = "/sessions/";

/// Signal emitted by Manager, Technology, Service and Clock when one property changes.
pub const PROPERTY_CHANGED: &str = "PropertyChanged";
/// Manager signal carrying the sorted service list and the removed services.
pub const SERVICES_CHANGED: &str = "ServicesChanged";
/// Manager signal for a new technology object.
pub const TECHNOLOGY_ADDED: &str = "TechnologyAdded";
/// Manager signal for a technology object that went away.
pub const TECHNOLOGY_REMOVED: &str = "TechnologyRemoved";

/// Whether `element` can be one element of an object path, which is what ConnMan demands of
/// technology types and service identifiers: non-empty, only `[A-Za-z0-9_]`.
pub fn is_valid_path_element(element: &str) -> bool {
    !element.is_empty()
        && element
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Object path of the technology of type `kind` (`ethernet`, `wifi`, …).
pub fn technology_path(kind: &str) -> String {
    format!("{TECHNOLOGY_PATH_PREFIX}{kind}")
}

/// Object path of the service with identifier `id` (`ethernet_0248580000001_cable`, …).
pub fn service_path(id: &str) -> String {
    format!("{SERVICE_PATH_PREFIX}{id}")
}

/// The last element of an object path: the identifier connmanctl shows for a service or
/// technology. The root path `/` gives an empty string, as in connmanctl's monitor.
pub fn last_path_element(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Prefix shared by every [`ErrorName`].
pub const ERROR_PREFIX: &str = "net.connman.Error.";

/// The errors of ConnMan's API (`net.connman.Error.<X>`), with the short message ConnMan sends
/// with each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorName {
    /// `net.connman.Error.AlreadyConnected`
    AlreadyConnected,
    /// `net.connman.Error.AlreadyDisabled`
    AlreadyDisabled,
    /// `net.connman.Error.AlreadyEnabled`
    AlreadyEnabled,
    /// `net.connman.Error.AlreadyExists`
    AlreadyExists,
    /// `net.connman.Error.Failed`
    Failed,
    /// `net.connman.Error.InProgress`
    InProgress,
    /// `net.connman.Error.InvalidArguments`
    InvalidArguments,
    /// `net.connman.Error.InvalidProperty`
    InvalidProperty,
    /// `net.connman.Error.InvalidService`
    InvalidService,
    /// `net.connman.Error.NoCarrier`
    NoCarrier,
    /// `net.connman.Error.NotConnected`
    NotConnected,
    /// `net.connman.Error.NotFound`
    NotFound,
    /// `net.connman.Error.NotImplemented`
    NotImplemented,
    /// `net.connman.Error.NotRegistered`
    NotRegistered,
    /// `net.connman.Error.NotSupported`
    NotSupported,
    /// `net.connman.Error.NotUnique`
    NotUnique,
    /// `net.connman.Error.OperationAborted`
    OperationAborted,
    /// `net.connman.Error.OperationCanceled`
    OperationCanceled,
    /// `net.connman.Error.OperationTimeout`
    OperationTimeout,
    /// `net.connman.Error.PassphraseRequired`
    PassphraseRequired,
    /// `net.connman.Error.PermissionDenied`
    PermissionDenied,
}

impl ErrorName {
    /// Every error name, in alphabetical order.
    pub const ALL: [ErrorName; 21] = [
        Self::AlreadyConnected,
        Self::AlreadyDisabled,
        Self::AlreadyEnabled,
        Self::AlreadyExists,
        Self::Failed,
        Self::InProgress,
        Self::InvalidArguments,
        Self::InvalidProperty,
        Self::InvalidService,
        Self::NoCarrier,
        Self::NotConnected,
        Self::NotFound,
        Self::NotImplemented,
        Self::NotRegistered,
        Self::NotSupported,
        Self::NotUnique,
        Self::OperationAborted,
        Self::OperationCanceled,
        Self::OperationTimeout,
        Self::PassphraseRequired,
        Self::PermissionDenied,
    ];

    /// The full D-Bus error name, e.g. `net.connman.Error.AlreadyEnabled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyConnected => "net.connman.Error.AlreadyConnected",
            Self::AlreadyDisabled => "net.connman.Error.AlreadyDisabled",
            Self::AlreadyEnabled => "net.connman.Error.AlreadyEnabled",
            Self::AlreadyExists => "net.connman.Error.AlreadyExists",
            Self::Failed => "net.connman.Error.Failed",
            Self::InProgress => "net.connman.Error.InProgress",
            Self::InvalidArguments => "net.connman.Error.InvalidArguments",
            Self::InvalidProperty => "net.connman.Error.InvalidProperty",
            Self::InvalidService => "net.connman.Error.InvalidService",
            Self::NoCarrier => "net.connman.Error.NoCarrier",
            Self::NotConnected => "net.connman.Error.NotConnected",
            Self::NotFound => "net.connman.Error.NotFound",
            Self::NotImplemented => "net.connman.Error.NotImplemented",
            Self::NotRegistered => "net.connman.Error.NotRegistered",
            Self::NotSupported => "net.connman.Error.NotSupported",
            Self::NotUnique => "net.connman.Error.NotUnique",
            Self::OperationAborted => "net.connman.Error.OperationAborted",
            Self::OperationCanceled => "net.connman.Error.OperationCanceled",
            Self::OperationTimeout => "net.connman.Error.OperationTimeout",
            Self::PassphraseRequired => "net.connman.Error.PassphraseRequired",
            Self::PermissionDenied => "net.connman.Error.PermissionDenied",
        }
    }

    /// The short human message ConnMan sends with this error (`Already enabled`), which is
    /// also what connmanctl shows; the daemon may append detail after it.
    pub const fn message(self) -> &'static str {
        match self {
            Self::AlreadyConnected => "Already connected",
            Self::AlreadyDisabled => "Already disabled",
            Self::AlreadyEnabled => "Already enabled",
            Self::AlreadyExists => "Already exists",
            Self::Failed => "Failed",
            Self::InProgress => "In progress",
            Self::InvalidArguments => "Invalid arguments",
            Self::InvalidProperty => "Invalid property",
            Self::InvalidService => "Invalid service",
            Self::NoCarrier => "No carrier",
            Self::NotConnected => "Not connected",
            Self::NotFound => "Not found",
            Self::NotImplemented => "Not implemented",
            Self::NotRegistered => "Not registered",
            Self::NotSupported => "Not supported",
            Self::NotUnique => "Not unique",
            Self::OperationAborted => "Operation aborted",
            Self::OperationCanceled => "Operation canceled",
            Self::OperationTimeout => "Operation timeout",
            Self::PassphraseRequired => "Passphrase required",
            Self::PermissionDenied => "Permission denied",
        }
    }

    /// The error with the full D-Bus name `name`, if it is one of ConnMan's.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

impl core::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_round_trip_and_share_the_prefix() {
        for e in ErrorName::ALL {
            assert!(e.as_str().starts_with(ERROR_PREFIX));
            assert_eq!(ErrorName::from_name(e.as_str()), Some(e));
        }
        assert_eq!(ErrorName::from_name("net.connman.Error.Bogus"), None);
    }

    #[test]
    fn error_messages_are_the_humanised_names() {
        for e in ErrorName::ALL {
            let short = &e.as_str()[ERROR_PREFIX.len()..];
            let mut human = String::new();
            for (i, c) in short.chars().enumerate() {
                if i > 0 && c.is_ascii_uppercase() {
                    human.push(' ');
                    human.push(c.to_ascii_lowercase());
                } else {
                    human.push(c);
                }
            }
            assert_eq!(e.message(), human);
        }
    }

    #[test]
    fn paths() {
        assert_eq!(technology_path("wifi"), "/net/connman/technology/wifi");
        assert_eq!(
            service_path("ethernet_024858000001_cable"),
            "/net/connman/service/ethernet_024858000001_cable"
        );
        assert_eq!(last_path_element("/net/connman/service/x_y"), "x_y");
        assert_eq!(last_path_element("/"), "");
        assert_eq!(last_path_element("plain"), "plain");
    }

    #[test]
    fn path_elements() {
        assert!(is_valid_path_element("ethernet_0248_cable"));
        assert!(is_valid_path_element("wifi"));
        assert!(!is_valid_path_element(""));
        assert!(!is_valid_path_element("a/b"));
        assert!(!is_valid_path_element("a-b"));
        assert!(!is_valid_path_element("ä"));
    }
}
