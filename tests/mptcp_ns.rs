//! The MPTCP edge against the real kernel, each test in its own network
//! namespace (needs root and `ip`). `ip mptcp` checks what the edge did.

use std::error::Error;
use std::ffi::CString;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pathman::core::mptcp::{plan, DesiredEndpoint};
use pathman::edge::mptcp::{Endpoint, EndpointFlags, Limits, Mptcp};

type TestResult = Result<(), Box<dyn Error>>;

const SUB: EndpointFlags = EndpointFlags::SUBFLOW;
const BAK: EndpointFlags = EndpointFlags::BACKUP;

/// A network namespace deleted on drop, also when the test panics.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Result<Netns, Box<dyn Error>> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "pmm-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name])?;
        Ok(Netns { name })
    }

    /// Runs `ip -n NS <args>` and returns its stdout.
    fn ip(&self, args: &[&str]) -> Result<String, Box<dyn Error>> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Moves the calling thread into the namespace; sockets opened later
    /// on this thread live there.
    fn enter(&self) -> TestResult {
        let f = File::open(format!("/run/netns/{}", self.name))?;
        // SAFETY: setns on an open netns fd; affects only this thread.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(cmd: &str, args: &[&str]) -> Result<String, Box<dyn Error>> {
    let out = Command::new(cmd).args(args).output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn ifindex(name: &str) -> Result<u32, Box<dyn Error>> {
    let c = CString::new(name)?;
    // SAFETY: a valid NUL-terminated name.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(format!("no interface {name}").into()),
        i => Ok(i),
    }
}

/// Two veth ends (managed) and a third interface (not managed), with addresses.
fn setup(ns: &Netns) -> TestResult {
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"])?;
    // No dummy module on every kernel: the unmanaged one is a veth too.
    ns.ip(&["link", "add", "um", "type", "veth", "peer", "name", "um2"])?;
    for (dev, addr) in [
        ("va", "10.1.0.1/24"),
        ("vb", "10.2.0.1/24"),
        ("um", "10.3.0.1/24"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", dev])?;
        ns.ip(&["link", "set", dev, "up"])?;
    }
    Ok(())
}

fn ip4(s: &str) -> Result<IpAddr, Box<dyn Error>> {
    Ok(s.parse()?)
}

#[test]
fn endpoints_limits_and_planner() -> TestResult {
    let ns = Netns::new()?;
    setup(&ns)?;
    ns.enter()?;
    let (va, vb, um) = (ifindex("va")?, ifindex("vb")?, ifindex("um")?);
    let (a1, a2, a3) = (ip4("10.1.0.1")?, ip4("10.2.0.1")?, ip4("10.3.0.1")?);

    smol::block_on(async {
        let mut pm = Mptcp::open().await?.ok_or("MPTCP unusable")?;
        assert_eq!(pm.endpoints().await?, vec![]);

        let id1 = pm.add(a1, va, SUB).await?;
        let id2 = pm.add(a2, vb, SUB | BAK).await?;
        assert_ne!(id1, id2);
        let show = ns.ip(&["mptcp", "endpoint", "show"])?;
        assert!(
            show.contains(&format!("10.1.0.1 id {id1} subflow dev va")),
            "{show}"
        );
        assert!(
            show.contains(&format!("10.2.0.1 id {id2} subflow backup dev vb")),
            "{show}"
        );

        pm.set_flags(id1, SUB | BAK).await?;
        pm.set_flags(id2, SUB).await?;
        let show = ns.ip(&["mptcp", "endpoint", "show"])?;
        assert!(
            show.contains(&format!("10.1.0.1 id {id1} subflow backup dev va")),
            "{show}"
        );
        assert!(
            show.contains(&format!("10.2.0.1 id {id2} subflow dev vb")),
            "{show}"
        );

        let two = Limits {
            subflows: 2,
            add_addr_accepted: 2,
        };
        pm.set_limits(two).await?;
        let show = ns.ip(&["mptcp", "limits", "show"])?;
        assert!(show.contains("add_addr_accepted 2 subflows 2"), "{show}");
        assert_eq!(pm.limits().await?, two);
        let too_many = pm
            .set_limits(Limits {
                subflows: 9,
                add_addr_accepted: 1,
            })
            .await;
        assert_eq!(too_many.map_err(|e| e.errno), Err(libc::EINVAL));

        let mut eps = pm.endpoints().await?;
        eps.sort_by_key(|e| e.id);
        let mut want = vec![
            Endpoint {
                id: id1,
                addr: a1,
                ifindex: Some(va),
                flags: SUB | BAK,
                port: None,
            },
            Endpoint {
                id: id2,
                addr: a2,
                ifindex: Some(vb),
                flags: SUB,
                port: None,
            },
        ];
        want.sort_by_key(|e| e.id);
        assert_eq!(eps, want);

        pm.del(id1).await?;
        let show = ns.ip(&["mptcp", "endpoint", "show"])?;
        assert!(!show.contains("10.1.0.1"), "{show}");
        let again = pm.del(id1).await;
        assert!(again.is_err(), "deleting a missing id: {again:?}");
        let e = again.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("mptcp delete endpoint failed: "), "{e}");

        // The planner: the admin's endpoint on `um` survives, 10.2.0.1 goes,
        // 10.1.0.1 comes back as backup.
        ns.ip(&[
            "mptcp", "endpoint", "add", "10.3.0.1", "dev", "um", "subflow",
        ])?;
        let desired = [DesiredEndpoint {
            addr: a1,
            ifindex: va,
            flags: SUB | BAK,
        }];
        let ops = plan(&desired, &pm.endpoints().await?, &[va, vb]);
        assert_eq!(ops.len(), 2, "{ops:?}");
        for op in ops {
            pm.apply(op).await?;
        }
        let eps = pm.endpoints().await?;
        assert_eq!(eps.len(), 2, "{eps:?}");
        assert!(eps
            .iter()
            .any(|e| e.addr == a3 && e.ifindex == Some(um) && e.flags == SUB));
        assert!(eps
            .iter()
            .any(|e| e.addr == a1 && e.ifindex == Some(va) && e.flags == SUB | BAK));
        assert_eq!(plan(&desired, &eps, &[va, vb]), vec![]);

        // Timing: 100 × (add + del). `add` includes the dump that reads
        // the id back.
        let (mut adds, mut dels, mut both) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..100 {
            let t = Instant::now();
            let id = pm.add(a2, vb, SUB).await?;
            let t_add = t.elapsed();
            pm.del(id).await?;
            both.push(t.elapsed());
            adds.push(t_add);
            dels.push(t.elapsed() - t_add);
        }
        println!(
            "mptcp add+del over 100: median {:?} (add incl. dump {:?}, del {:?}), max {:?}",
            median(&mut both),
            median(&mut adds),
            median(&mut dels),
            both.iter().max()
        );
        Ok(())
    })
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[test]
fn open_is_none_when_disabled() -> TestResult {
    let ns = Netns::new()?;
    run(
        "ip",
        &[
            "netns",
            "exec",
            &ns.name,
            "sysctl",
            "-qw",
            "net.mptcp.enabled=0",
        ],
    )?;
    ns.enter()?;
    smol::block_on(async {
        assert!(Mptcp::open().await?.is_none());
        Ok(())
    })
}
