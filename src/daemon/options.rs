//! `pathman daemon` command-line options (SPEC §9).

use std::fmt;
use std::path::PathBuf;

/// Parsed daemon options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `-c`: main.conf named on the command line (`None`: the default path,
    /// whose absence is normal; a named file must exist).
    pub config: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    /// `-i`: only these interfaces (empty = all).
    pub devices: Vec<String>,
    /// `-I`: never these interfaces.
    pub no_devices: Vec<String>,
    pub mpath_routing: bool,
    /// `-d`: debug logging; `Some("")` = everything, else module filters.
    pub debug: Option<String>,
    pub no_dnsproxy: bool,
    pub board: Option<PathBuf>,
    /// `--no-set-clock`: measure the time and report it, never set the clock.
    pub no_set_clock: bool,
    pub version: bool,
    pub help: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: None,
            state_dir: PathBuf::from("/var/lib/pathman"),
            run_dir: PathBuf::from("/run/pathman"),
            devices: Vec::new(),
            no_devices: Vec::new(),
            mpath_routing: false,
            debug: None,
            no_dnsproxy: false,
            board: None,
            no_set_clock: false,
            version: false,
            help: false,
        }
    }
}

/// A bad command line.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Usage text.
pub const USAGE: &str = "\
Usage: pathman daemon [OPTIONS]   (also: pathmand [OPTIONS])
  -c, --config FILE       main.conf (default /etc/pathman/main.conf)
      --state-dir DIR     persistent state (default /var/lib/pathman)
      --run-dir DIR       runtime files, resolv.conf (default /run/pathman)
  -i, --device LIST       manage only these interfaces (comma separated; the last -i wins)
  -I, --nodevice LIST     never manage these interfaces
  -M, --mpathrouting      MultipathRouting on by default for every service
  -d, --debug[=MODULES]   debug logging, optionally only for modules, comma separated:
                          dhcp (client, ACD, IPv4LL)  edge::dhcp (its sockets)  online
                          time (SNTP)  dbus  core (model, plan)  daemon (loop, apply,
                          settle)  edge::nft  edge::mptcp  edge::rtnl  config  ctl
  -n, --nodaemon          stay in the foreground (always the case)
  -r, --nodnsproxy        no DNS proxy: write the servers into resolv.conf (always the case)
      --board FILE        board configuration
      --no-set-clock      measure the time by SNTP and report it, never set the clock
  -v, --version           print the version
  -h, --help              this text
SIGUSR1 logs one dump of everything pathman owns and believes (also:
`pathman ctl state --all`); SIGTERM/SIGINT/SIGHUP remove what it installed and exit.";

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses the arguments after `daemon` (or after `pathmand`).
pub fn parse(args: &[String]) -> Result<Options, UsageError> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, UsageError> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| UsageError(format!("{name} needs a value"))),
            }
        };
        match flag {
            "-c" | "--config" => o.config = Some(PathBuf::from(value(flag)?)),
            "--state-dir" => o.state_dir = PathBuf::from(value(flag)?),
            "--run-dir" => o.run_dir = PathBuf::from(value(flag)?),
            "-i" | "--device" => o.devices = list(&value(flag)?),
            "-I" | "--nodevice" => o.no_devices = list(&value(flag)?),
            "-M" | "--mpathrouting" => o.mpath_routing = true,
            "-d" | "--debug" => o.debug = Some(inline.clone().unwrap_or_default()),
            "-n" | "--nodaemon" => {}
            "-r" | "--nodnsproxy" => o.no_dnsproxy = true,
            "--board" => o.board = Some(PathBuf::from(value(flag)?)),
            "--no-set-clock" => o.no_set_clock = true,
            "-v" | "--version" => o.version = true,
            "-h" | "--help" => o.help = true,
            _ if flag.starts_with("-d") && flag.len() > 2 => {
                o.debug = Some(flag[2..].trim_start_matches('=').to_string())
            }
            other => return Err(UsageError(format!("unknown option {other}"))),
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_every_option() {
        let o = parse(&args(
            "-c /x.conf --state-dir /s --run-dir=/r -i eth0,eth1 -I wlan0 -M -d=dhcp -n -r --board b.conf",
        ))
        .unwrap();
        assert_eq!(o.config, Some(PathBuf::from("/x.conf")));
        assert_eq!(o.state_dir, PathBuf::from("/s"));
        assert_eq!(o.run_dir, PathBuf::from("/r"));
        assert_eq!(o.devices, vec!["eth0", "eth1"]);
        assert_eq!(o.no_devices, vec!["wlan0"]);
        assert!(o.mpath_routing && o.no_dnsproxy);
        assert_eq!(o.debug.as_deref(), Some("dhcp"));
        assert_eq!(o.board, Some(PathBuf::from("b.conf")));
        assert_eq!(parse(&args("--debug")).unwrap().debug.as_deref(), Some(""));
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(parse(&args("--bogus")).is_err());
        assert!(parse(&args("-c")).is_err());
    }
}
