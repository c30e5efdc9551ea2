//! What oFono sends, as pathman decodes it: the input's first byte picks the byte order and
//! the message shape, the rest is a marshalled body (D-Bus wire format). A `GetProperties`
//! reply (a{sv}) goes through every interface's decoder (`dbus::ofono::modem`, `sim`,
//! `netreg`, `cm`, `context`) into one modem view; a `PropertyChanged` (sv) through each of
//! them too; `GetContexts`/`GetModems` (a(oa{sv})) make contexts. The view then goes to the
//! model (`Model::cellular_modem`, cellular powered, a managed cellular link), so oFono's
//! data reaches services, settings (`Settings` and `IPv6.Settings`) and the plan. Every outcome must be a refusal or a
//! consistent model, never a panic: at most `CELLULAR_MAX_CONTEXTS` cellular services, each
//! with a valid identifier; a bound one on the managed link only.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use pathman::caps;
use pathman::core::model::{ConfigSource, LinkSeen, Model, ModelSettings};
use pathman::core::tech::cellular::{Context as Ctx, ModemView};
use pathman::core::types::{IfName, ServiceConfig, ServiceId, Technology};
use pathman::dbus::ofono;
use zvariant::serialized::{Context, Data};
use zvariant::{OwnedObjectPath, OwnedValue, BE, LE};

struct Defaults;
impl ConfigSource for Defaults {
    fn load(&mut self, _: &ServiceId) -> ServiceConfig {
        ServiceConfig::default()
    }
}

fn apply_all(view: &mut ModemView, props: &HashMap<String, OwnedValue>) {
    let _ = ofono::each(props, |k, v| ofono::modem(view, k, v));
    let _ = ofono::each(props, |k, v| ofono::sim(view, k, v));
    let _ = ofono::each(props, |k, v| ofono::netreg(view, k, v));
    let _ = ofono::each(props, |k, v| ofono::cm(view, k, v));
}

fn context(path: &str, props: &HashMap<String, OwnedValue>) -> Ctx {
    let mut c = Ctx {
        path: path.to_string(),
        ..Ctx::default()
    };
    let _ = ofono::each(props, |k, v| ofono::context(&mut c, k, v));
    c
}

fn check(view: &ModemView) {
    let mut m = Model::new(
        ModelSettings::default(),
        false,
        &[(Technology::Cellular, true)],
    );
    m.link_changed(
        LinkSeen {
            ifindex: 9,
            name: IfName::try_from("dummy0").unwrap(),
            mac: [2, 0, 0, 0, 0, 9],
            tech: Technology::Cellular,
            up: true,
            carrier: true,
            mtu: 1500,
            lan: false,
            master: None,
        },
        &mut Defaults,
    );
    for _ in 0..2 {
        m.cellular_modem(view, &mut Defaults);
        let cell: Vec<_> = m.services.iter().filter(|s| s.cellular.is_some()).collect();
        assert!(cell.len() <= caps::CELLULAR_MAX_CONTEXTS);
        for s in cell {
            assert!(s.id.starts_with("cellular_"));
            assert!(
                s.ifindex == 0 || s.ifindex == 9,
                "bound to an unmanaged link"
            );
        }
        let _ = m.take_actions();
        let _ = pathman::core::plan::endpoints(&m, pathman::core::mptcp::EndpointFlags::NONE);
        // The network's IPv6 address, if any, is only ever planned on the managed link.
        let st = pathman::core::plan::desired(&m);
        assert!(st.addresses.iter().all(|a| a.ifindex == 9), "{st:?}");
    }
    m.cellular_modem_gone(&view.path);
    assert!(m.services.iter().all(|s| s.cellular.is_none()));
}

fn base() -> ModemView {
    ModemView {
        path: "/fuzz".into(),
        hardware: true,
        powered: true,
        online: true,
        imsi: Some("001010123456789".into()),
        netreg: Some(Default::default()),
        cm: true,
        attached: true,
        ..ModemView::default()
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, body)) = input.split_first() else {
        return;
    };
    let endian = if selector & 1 == 0 { LE } else { BE };
    let data = Data::new(body, Context::new_dbus(endian, 0));
    let mut view = base();
    match (selector >> 1) % 3 {
        // GetProperties of any interface (applied to all of them), and as a context.
        0 => {
            let Ok((props, _)) = data.deserialize::<HashMap<String, OwnedValue>>() else {
                return;
            };
            apply_all(&mut view, &props);
            let mut c = context("/fuzz/context1", &props);
            c.kind = "internet".into();
            if c.apn.is_empty() {
                c.apn = "internet".into();
            }
            view.contexts.push(c);
        }
        // PropertyChanged(sv) on every interface and on a context.
        1 => {
            let Ok(((name, value), _)) = data.deserialize::<(String, OwnedValue)>() else {
                return;
            };
            let _ = ofono::modem(&mut view, &name, &value);
            let _ = ofono::sim(&mut view, &name, &value);
            let _ = ofono::netreg(&mut view, &name, &value);
            let _ = ofono::cm(&mut view, &name, &value);
            let mut c = Ctx {
                path: "/fuzz/context1".into(),
                kind: "internet".into(),
                apn: "internet".into(),
                active: true,
                ..Ctx::default()
            };
            let _ = ofono::context(&mut c, &name, &value);
            view.contexts.push(c);
        }
        // GetContexts / GetModems: a(oa{sv}).
        _ => {
            let Ok((list, _)) =
                data.deserialize::<Vec<(OwnedObjectPath, HashMap<String, OwnedValue>)>>()
            else {
                return;
            };
            for (path, props) in list.iter().take(64) {
                let p = path.as_str();
                if p.starts_with("/fuzz/") {
                    view.contexts.push(context(p, props));
                } else {
                    apply_all(&mut view, props);
                }
            }
        }
    }
    check(&view);
});
