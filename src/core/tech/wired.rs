//! Ethernet and USB gadget: one service per device, present while the link
//! is up with carrier, named after the device's MAC (ConnMan's
//! `ethernet_<mac>_cable`, `gadget_<mac>_usb`).

use std::fmt;

use crate::core::model::LinkSeen;
use crate::core::types::{ServiceId, Technology};

/// The service of a wired link: there while it is up with carrier.
pub fn offered(link: &LinkSeen) -> Option<ServiceId> {
    (link.up && link.carrier).then(|| wired_service_id(link.tech, link.mac))
}

/// Builds the identifier of the service of a wired-like device.
pub fn wired_service_id(tech: Technology, mac: [u8; 6]) -> ServiceId {
    use fmt::Write;
    let mut id = ServiceId::new();
    let group = match tech {
        Technology::Gadget => "usb",
        _ => "cable",
    };
    // 8 + 1 + 12 + 1 + 5 chars: always fits in 64.
    let _ = write!(
        id,
        "{}_{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}_{}",
        tech.as_str(),
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5],
        group
    );
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_look_like_connman() {
        let mac = [0x02, 0x48, 0x58, 0x00, 0x00, 0x01];
        assert_eq!(
            wired_service_id(Technology::Ethernet, mac).as_str(),
            "ethernet_024858000001_cable"
        );
        assert_eq!(
            wired_service_id(Technology::Gadget, mac).as_str(),
            "gadget_024858000001_usb"
        );
    }
}
