//! Technologies as modules that make services. Each turns what it observes
//! (kernel links now; wpa_supplicant's networks and oFono's contexts in the
//! next technologies) into services, and the core's decisions into requests.
//! Everything after "this service has an interface and needs addresses" —
//! DHCP, IPv4LL, manual addresses, ordering, routes, multipath, MPTCP,
//! sessions — is shared and knows nothing of the technology.

pub mod cellular;
pub mod wifi;
pub mod wired;

use crate::core::model::LinkSeen;
use crate::core::types::{ServiceId, Technology};

/// The service a link offers now, by its technology, if any.
pub fn offered(link: &LinkSeen) -> Option<ServiceId> {
    match link.tech {
        Technology::Ethernet | Technology::Gadget => wired::offered(link),
        // A radio's services are its networks, not its carrier: they come
        // from wpa_supplicant and oFono, whose modules are not here yet.
        Technology::Wifi | Technology::Cellular => None,
    }
}

/// Whether `Service.Remove` may forget a service of this technology.
pub fn removable(tech: Technology) -> bool {
    !matches!(tech, Technology::Ethernet | Technology::Gadget)
}
