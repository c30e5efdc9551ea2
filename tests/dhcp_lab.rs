//! End-to-end: dnsmasq in one network namespace, our driver in another, a veth pair between
//! them with TX checksum offload left on (so the kernel hands us unfinished UDP checksums).
//! Needs root and dnsmasq; fails with a clear message otherwise (a test
//! that cannot run must not pass).

use pathman::dhcp::acd::ConflictDetection;
use pathman::dhcp::acquire::{Acquire, DhcpEventKind};
use pathman::edge::dhcp::DhcpSockets;
use pathman::task::Handle;
use smol::future::FutureExt;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

struct Lab {
    server_ns: String,
    client_ns: String,
    dir: PathBuf,
    dnsmasq: Option<Child>,
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status();
    assert!(
        matches!(st, Ok(s) if s.success()),
        "ip {} failed: {st:?}",
        args.join(" ")
    );
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("pmd-{pid}-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            server_ns: format!("pmd-{pid}-{tag}a"),
            client_ns: format!("pmd-{pid}-{tag}b"),
            dir,
            dnsmasq: None,
        };
        ip(&["netns", "add", &lab.server_ns]);
        ip(&["netns", "add", &lab.client_ns]);
        ip(&[
            "-n",
            &lab.server_ns,
            "link",
            "add",
            "va",
            "type",
            "veth",
            "peer",
            "name",
            "vb",
            "netns",
            &lab.client_ns,
        ]);
        ip(&[
            "-n",
            &lab.server_ns,
            "addr",
            "add",
            "10.99.0.1/24",
            "dev",
            "va",
        ]);
        ip(&["-n", &lab.server_ns, "link", "set", "va", "up"]);
        ip(&[
            "-n",
            &lab.client_ns,
            "link",
            "set",
            "vb",
            "address",
            "02:11:22:33:44:55",
        ]);
        ip(&["-n", &lab.client_ns, "link", "set", "vb", "up"]);
        lab
    }

    fn start_dnsmasq(&mut self) {
        let d = self.dir.display();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.server_ns, "dnsmasq"])
            .args([
                "--keep-in-foreground",
                "--no-ping",
                "--port=0",
                "--conf-file=/dev/null",
                "--user=root",
                "--interface=va",
                "--bind-interfaces",
                "--dhcp-range=10.99.0.50,10.99.0.150,255.255.255.0,1h",
                "--dhcp-option=3,10.99.0.1",
                "--dhcp-option=6,10.99.0.1,10.99.0.2",
                "--dhcp-option=15,lab.example",
                "--log-dhcp",
            ])
            .arg(format!("--log-facility={d}/dnsmasq.log"))
            .arg(format!("--dhcp-leasefile={d}/leases"))
            .arg(format!("--pid-file={d}/pid"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.dnsmasq = Some(child);
        // Wait until dnsmasq listens on port 67.
        let end = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.server_ns,
                    "ss",
                    "-Hlun",
                    "sport = :67",
                ])
                .output()
                .unwrap();
            if !out.stdout.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < end,
                "dnsmasq did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dnsmasq.log")).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.dnsmasq.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.server_ns])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.client_ns])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        eprintln!("{} {}", r.level(), r.args());
    }
    fn flush(&self) {}
}

fn usable() -> bool {
    if log::set_logger(&StderrLog).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let dnsmasq = Command::new("dnsmasq").arg("--version").output().is_ok();
    assert!(
        root && dnsmasq,
        "dhcp_lab needs root and dnsmasq (tests/run.sh installs it)"
    );
    true
}

/// Runs the driver in `ns` on a thread of its own until `Bound`, lets the closure act on the
/// lease (as the daemon would), then stops with RELEASE. Returns the events seen.
fn run_client(ns: &str, on_bound: impl FnOnce(Ipv4Addr) + Send + 'static) -> Vec<DhcpEventKind> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let f = File::open(&path).unwrap();
        // SAFETY: valid netns fd; only this test thread changes namespace.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let ifindex = unsafe { libc::if_nametoindex(c"vb".as_ptr()) };
        assert_ne!(ifindex, 0);
        let ex: &'static smol::LocalExecutor<'static> =
            Box::leak(Box::new(smol::LocalExecutor::new()));
        smol::block_on(ex.run(async {
            let (tx, rx) = smol::channel::unbounded::<DhcpEventKind>();
            let name = pathman::dhcp::ifname("vb");
            let machine = Acquire::new(name.clone(), MAC, 7, None, ConflictDetection::On);
            let h = Handle::spawn(ex, machine, DhcpSockets::new(ifindex, name), move |kind| {
                let tx = tx.clone();
                async move { tx.send(kind).await.is_ok() }
            });
            let mut seen = Vec::new();
            let bound = async {
                loop {
                    let kind = rx.recv().await.unwrap();
                    seen.push(kind.clone());
                    if let DhcpEventKind::Bound(l) = kind {
                        return Some(l);
                    }
                }
            }
            .or(async {
                smol::Timer::after(Duration::from_secs(30)).await;
                None
            })
            .await;
            let lease = bound.expect("no lease within 30 s");
            on_bound(lease.address);
            h.stop(true).await;
            while let Ok(kind) = rx.try_recv() {
                seen.push(kind);
            }
            seen
        }))
    })
    .join()
    .unwrap()
}

#[test]
fn lease_from_dnsmasq_then_release() {
    if !usable() {
        return;
    }
    let mut lab = Lab::new("l");
    lab.start_dnsmasq();
    let ns = lab.client_ns.clone();
    let seen = run_client(&lab.client_ns, move |addr| {
        // Play the daemon: configure the address so RELEASE can go out over UDP.
        ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "vb"]);
    });
    let lease = seen
        .iter()
        .find_map(|k| match k {
            DhcpEventKind::Bound(l) => Some(l.clone()),
            _ => None,
        })
        .unwrap();
    let o = lease.address.octets();
    assert_eq!(&o[..3], &[10, 99, 0]);
    assert!((50..=150).contains(&o[3]), "{lease:?}");
    assert_eq!(lease.prefix_len, 24);
    assert_eq!(lease.router, Some(Ipv4Addr::new(10, 99, 0, 1)));
    assert_eq!(
        &lease.dns_servers[..],
        &[Ipv4Addr::new(10, 99, 0, 1), Ipv4Addr::new(10, 99, 0, 2)]
    );
    assert_eq!(lease.domain_name.as_str(), "lab.example");
    assert_eq!(lease.server_id, Ipv4Addr::new(10, 99, 0, 1));
    assert_eq!(lease.lease_secs, 3600);
    assert_eq!(seen.last(), Some(&DhcpEventKind::Lost));
    // dnsmasq logs asynchronously.
    let mut log = String::new();
    for _ in 0..20 {
        log = lab.log();
        if log.contains("DHCPRELEASE") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(log.contains("DHCPACK"), "{log}");
    assert!(
        log.contains(&format!("DHCPRELEASE(va) {}", lease.address)),
        "{log}"
    );
}

#[test]
fn release_over_raw_without_configured_address() {
    if !usable() {
        return;
    }
    let mut lab = Lab::new("r");
    lab.start_dnsmasq();
    // The address is never configured, so the UDP bind fails and RELEASE goes out raw.
    let seen = run_client(&lab.client_ns, |_| {});
    assert!(seen.iter().any(|k| matches!(k, DhcpEventKind::Bound(_))));
    let mut log = String::new();
    for _ in 0..20 {
        log = lab.log();
        if log.contains("DHCPRELEASE") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(log.contains("DHCPRELEASE"), "{log}");
}
