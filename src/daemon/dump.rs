//! The serial-console view: one readable text of everything pathman owns and
//! believes — manager, devices, services, sessions, tasks, what it installed
//! in the kernel (addresses, routes, rules, MPTCP endpoints and limits, its
//! nft table), leases and timers. `pathman ctl state --all` fetches it over
//! D-Bus; SIGUSR1 writes it to the log. It never carries secrets (there are
//! none in the model: settings files keep them).

use std::fmt::Write;
use std::time::Instant;

use super::Daemon;
use crate::core::netstate::table_name;

impl Daemon {
    /// SIGUSR1: the state text, line by line, in the log.
    pub(super) async fn dump(&mut self) {
        let text = self.state_text().await;
        for line in text.lines() {
            log::info!("state: {line}");
        }
    }

    /// Everything pathman owns and believes, as text.
    pub(super) async fn state_text(&mut self) -> String {
        let mut s = String::with_capacity(4096);
        let now = Instant::now();
        let name = |ifindex: u32| self.ifname(ifindex);
        let m = &self.model;
        let _ = writeln!(
            s,
            "pathman {} pid {}: state {}, offline {}, bus {}",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            m.manager_state(),
            m.offline,
            if self.bus.is_some() {
                "connected"
            } else {
                "not connected (waiting for the system bus)"
            }
        );
        section(&mut s, "technologies", m.techs.len());
        for t in &m.techs {
            let _ = writeln!(
                s,
                "  {} powered {} tethering {}",
                t.tech,
                t.powered,
                m.tether_settings(t.tech).enabled
            );
        }
        match crate::core::tether::plan(m) {
            None => s.push_str(
                "tethering: off
",
            ),
            Some(p) => {
                let ports: Vec<String> = p.ports.iter().map(|i| self.ifname(*i)).collect();
                let _ = writeln!(
                    s,
                    "tethering: bridge {} ({}) ports {} block {} router {} clients {}",
                    p.bridge,
                    m.tether
                        .bridge
                        .map(|i| format!("ifindex {i}"))
                        .unwrap_or_else(|| "not created".into()),
                    ports.join(","),
                    p.block,
                    p.block.gateway(),
                    m.tether.clients.len()
                );
                if let Some((bridge, stats)) = self.tasks.dhcp_server_stats() {
                    let _ = writeln!(s, "  dhcp server {bridge}: {stats}");
                }
                if let Some((radio, ap)) = m.tether_ap() {
                    let running = m
                        .tether
                        .ap_up
                        .as_ref()
                        .is_some_and(|(i, up)| *i == radio && *up == ap);
                    let _ = writeln!(
                        s,
                        "  access point {:?} on {} {} MHz {} {}",
                        ap.ssid,
                        self.ifname(radio),
                        ap.freq,
                        if ap.passphrase.is_some() {
                            "wpa2-psk"
                        } else {
                            "open"
                        },
                        if running { "running" } else { "starting" }
                    );
                }
            }
        }
        section(&mut s, "devices", m.devices.len());
        for d in &m.devices {
            let _ = writeln!(
                s,
                "  {} ifindex {} {} mac {} up {} carrier {} mtu {}",
                d.name,
                d.ifindex,
                d.tech,
                mac(&d.mac),
                d.up,
                d.carrier,
                d.mtu
            );
        }
        section(&mut s, "services", m.services.len());
        for (rank, svc) in crate::core::order::sorted(m)
            .into_iter()
            .map(|i| &m.services[i])
            .enumerate()
        {
            let _ = write!(
                s,
                "  {}. {} {} ifindex {} state {}",
                rank + 1,
                svc.id,
                svc.ifname,
                svc.ifindex,
                svc.state.as_str()
            );
            if let Some(e) = svc.error {
                let _ = write!(s, " error {e}");
            }
            if svc.internet_lost {
                let _ = write!(s, " internet-lost");
            }
            if let Some(w) = &svc.wifi {
                let _ = write!(
                    s,
                    " wifi {:?} {} strength {} {} MHz{}{}",
                    crate::core::tech::wifi::display_name(&w.ssid),
                    w.security.as_str(),
                    w.strength,
                    w.frequency,
                    if svc.config.passphrase.is_some() {
                        " passphrase-stored"
                    } else {
                        ""
                    },
                    if w.in_range { "" } else { " out-of-range" }
                );
                if let Some(p) = &w.provision {
                    let _ = write!(s, " provisioned-by {}", p.origin);
                    if let Some(e) = &p.eap {
                        let _ = write!(s, " eap {}", e.method.wpa_name());
                    }
                }
            }
            if let Some(c) = &svc.cellular {
                let _ = write!(
                    s,
                    " cellular {:?} strength {} context {}{}{}",
                    c.name,
                    c.strength,
                    c.context,
                    if c.roaming { " roaming" } else { "" },
                    if c.activating { " activating" } else { "" }
                );
            }
            if let Some(v4) = &svc.ipv4 {
                let _ = write!(
                    s,
                    " ipv4 {}/{} ({})",
                    v4.net.addr,
                    v4.net.prefix_len,
                    match v4.source {
                        crate::core::model::Ipv4Source::Dhcp => "dhcp",
                        crate::core::model::Ipv4Source::Manual => "manual",
                        crate::core::model::Ipv4Source::LinkLocal => "link-local",
                        crate::core::model::Ipv4Source::Fixed => "fixed by the modem",
                    }
                );
                if let Some(gw) = v4.gateway {
                    let _ = write!(s, " via {gw}");
                }
                list(&mut s, " dns", v4.nameservers.iter());
                list(&mut s, " ntp", v4.timeservers.iter());
                list(&mut s, " domains", v4.domains.iter().map(|d| d.as_str()));
            }
            let fixed = svc.ipv6_fixed.as_ref().and_then(|f| f.addr);
            for a in &svc.ipv6 {
                let _ = write!(s, " ipv6 {}/{}", a.addr, a.prefix_len);
                if Some(*a) == fixed {
                    s.push_str(" fixed by the modem");
                }
            }
            if let Some(gw) = svc.ipv6_gateway.filter(|_| !svc.ipv6.is_empty()) {
                let _ = write!(s, " via {gw}");
            }
            let _ = writeln!(
                s,
                " multipath {} mptcp {}",
                svc.multipath(m.settings.multipath_default),
                svc.config.mptcp_link.as_str()
            );
        }
        section(&mut s, "sessions", m.sessions.len());
        for sess in &m.sessions {
            let _ = writeln!(
                s,
                "  {} owner {} uid {} mark {:#x} selectors {}",
                sess.path,
                sess.owner,
                sess.owner_uid,
                sess.mark(),
                sess.flows.len()
            );
        }
        section(&mut s, "tasks", self.tasks.len());
        for line in self.tasks.describe(&name) {
            let _ = writeln!(s, "  {line}");
        }
        let k = &self.kernel;
        section(&mut s, "addresses", k.addresses.len());
        for a in &k.addresses {
            let _ = writeln!(s, "  {}/{} dev {}", a.addr, a.prefix_len, name(a.ifindex));
        }
        section(&mut s, "routes", k.routes.len());
        for r in &k.routes {
            let _ = write!(s, "  table {} {}", table_name(r.table), r.dst);
            if let Some(gw) = r.gateway {
                let _ = write!(s, " via {gw}");
            }
            let _ = write!(s, " dev {} metric {}", name(r.oif), r.metric);
            if let Some(src) = r.pref_src {
                let _ = write!(s, " src {src}");
            }
            s.push('\n');
        }
        section(&mut s, "rules", k.rules.len());
        for r in &k.rules {
            let _ = write!(s, "  {}{}", r.priority, if r.ipv6 { " (IPv6)" } else { "" });
            match r.src {
                Some(src) => {
                    let _ = write!(s, " from {src}");
                }
                None => s.push_str(" from all"),
            }
            if let Some(mark) = r.fwmark {
                let _ = write!(s, " fwmark {mark:#x}");
            }
            let _ = writeln!(s, " lookup {}", table_name(r.table));
        }
        // Asking the kernel borrows the path manager: names resolved beforehand.
        let names: Vec<(u32, String)> = self
            .model
            .devices
            .iter()
            .map(|d| (d.ifindex, d.name.to_string()))
            .collect();
        let name_of = |ifindex: u32| {
            names
                .iter()
                .find(|(i, _)| *i == ifindex)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| ifindex.to_string())
        };
        match self.mptcp.as_mut() {
            Some(pm) => {
                match pm.endpoints().await {
                    Ok(eps) => {
                        section(&mut s, "mptcp endpoints", eps.len());
                        for ep in eps {
                            let _ = writeln!(
                                s,
                                "  id {} {} dev {} flags {}",
                                ep.id,
                                ep.addr,
                                ep.ifindex.map(name_of).unwrap_or_else(|| "-".into()),
                                ep.flags
                            );
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(s, "mptcp endpoints: cannot read: {e}");
                    }
                }
                match pm.limits().await {
                    Ok(l) => {
                        let _ = writeln!(
                            s,
                            "mptcp limits: subflows {} add_addr_accepted {}",
                            l.subflows, l.add_addr_accepted
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(s, "mptcp limits: cannot read: {e}");
                    }
                }
            }
            None => s.push_str("mptcp: not available in this kernel\n"),
        }
        match (&self.nft, &self.ruleset_applied) {
            (None, _) => s.push_str("nft: not available in this kernel\n"),
            (Some(_), None) => s.push_str("nft table pathman: not applied yet\n"),
            (Some(_), Some(rs)) => {
                let _ = writeln!(
                    s,
                    "nft table pathman: {} mark rules, {} snat rules",
                    rs.marks.len(),
                    rs.snat.len()
                );
                for r in &rs.marks {
                    let _ = writeln!(s, "  mark {:#x} if {:?}", r.mark, r.m);
                }
                for r in &rs.snat {
                    let _ = writeln!(
                        s,
                        "  snat mark {:#x} oif {} to {}",
                        r.mark,
                        self.ifname(r.oif),
                        r.addr
                    );
                }
                for r in &rs.forward_marks {
                    let _ = writeln!(s, "  forwarded mark {:#x} if {:?}", r.mark, r.m);
                }
                for r in &rs.masquerade {
                    let _ = writeln!(
                        s,
                        "  masquerade {}/{} oif {}",
                        r.src.0,
                        r.src.1,
                        self.ifname(r.oif)
                    );
                }
                match (&rs.offload, &self.offload_refused) {
                    (Some(o), _) => {
                        let _ = writeln!(s, "  flowtable on {}", o.devices.join(","));
                    }
                    (None, _) if !rs.masquerade.is_empty() && !self.model.tether.fast_path => {
                        s.push_str("  flowtable off (main.conf TetheringFastPath=false)\n");
                    }
                    (None, Some(d)) if !rs.masquerade.is_empty() => {
                        let _ = writeln!(s, "  flowtable refused on {}", d.join(","));
                    }
                    _ => {}
                }
            }
        }
        self.leases_text(&mut s);
        s.push_str("timers:\n");
        let due = |t: Option<Instant>| match t {
            Some(t) => format!("in {} ms", t.saturating_duration_since(now).as_millis()),
            None => "none".into(),
        };
        let _ = writeln!(s, "  counters next {}", due(self.counters.next_due()));
        let _ = writeln!(
            s,
            "  adopted lease expiry next {}",
            due(self.next_adopted_expiry())
        );
        let _ = writeln!(
            s,
            "  unsaved settings {} (state dir not writable), retry {}",
            self.unsaved.len(),
            due(self.save_retry_at)
        );
        for (t, id) in self.wifi_retries() {
            let _ = writeln!(s, "  wifi auto-connect retry {id} {}", due(Some(*t)));
        }
        let c = &self.model.clock;
        let _ = write!(
            s,
            "clock: time updates {}, set clock {}, synced {}",
            c.time_updates.as_str(),
            self.time.set_clock,
            c.synced()
        );
        if let Some(meas) = &c.measured {
            let _ = write!(
                s,
                ", offset {} us, delay {} us, stratum {}",
                meas.offset_ns / 1000,
                meas.delay_ns / 1000,
                meas.stratum
            );
        }
        s.push('\n');
        let _ = writeln!(
            s,
            "resolv.conf: {}",
            match &self.resolv_path {
                Some(p) => p.display().to_string(),
                None => "not written (ResolvConf=/dev/null)".into(),
            }
        );
        s
    }

    /// The DHCP leases in the run directory, with their time left.
    fn leases_text(&self, s: &mut String) {
        let now = crate::config::lease::boottime_secs();
        let mut lines = Vec::new();
        for svc in &self.model.services {
            let path = crate::config::lease::path(&self.run_dir, &svc.id);
            let Ok(Some((kf, _))) = crate::config::store::read_keyfile(&path) else {
                continue;
            };
            let line = match crate::config::lease::parse(&kf) {
                Ok(l) => {
                    let left = match l.expires {
                        Some(t) => format!("{} s left", t.saturating_sub(now)),
                        None => "infinite".into(),
                    };
                    format!(
                        "  {} {}/{} {left}",
                        svc.ifname, l.config.net.addr, l.config.net.prefix_len
                    )
                }
                Err(e) => format!("  {} unusable lease file: {e}", svc.ifname),
            };
            lines.push(line);
        }
        section(s, "leases", lines.len());
        for l in lines {
            s.push_str(&l);
            s.push('\n');
        }
    }
}

fn section(s: &mut String, title: &str, n: usize) {
    let _ = writeln!(s, "{title}: {n}");
}

/// ` label a,b,c`, or nothing for no items.
fn list<T: std::fmt::Display>(s: &mut String, label: &str, items: impl Iterator<Item = T>) {
    for (i, item) in items.enumerate() {
        let _ = if i == 0 {
            write!(s, "{label} {item}")
        } else {
            write!(s, ",{item}")
        };
    }
}

fn mac(m: &[u8; 6]) -> String {
    crate::core::types::mac_text(m)
}
