//! The multi-call binary: `pathman daemon …` (or `pathmand`) and
//! `pathman ctl …` (or `pathmanctl`), like busybox.

use std::path::Path;

const USAGE: &str = "\
Usage: pathman daemon [OPTIONS]   (or pathmand)      the connection manager
       pathman ctl [COMMAND]        (or pathmanctl)    the client (connmanctl's commands)
       pathman --version | --help
`pathman daemon --help` lists the daemon's options, `pathman ctl help` the client's commands.";

/// What the first argument of a plain `pathman` asks for.
fn run(args: &[String]) -> i32 {
    match args.get(1).map(String::as_str) {
        Some("daemon") => pathman::daemon::main(&args[2..]),
        Some("ctl") => pathman::ctl::main(&args[2..]),
        Some("-v" | "--version") => {
            println!("pathman {}", env!("CARGO_PKG_VERSION"));
            0
        }
        // Asked for: stdout and success, so `pathman --help | less` works.
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            0
        }
        Some(other) => {
            eprintln!("pathman: unknown argument '{other}'\n{USAGE}");
            2
        }
        None => {
            eprintln!("{USAGE}");
            2
        }
    }
}

/// A crash leaves one line on stderr (a serial console shows the last lines
/// first): where and why. panic=abort ends the process after it.
fn one_line_panics() {
    std::panic::set_hook(Box::new(|info| {
        let why = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let at = info.location().map(|l| (l.file(), l.line()));
        eprintln!("{}", crash_line(at, why));
    }));
}

/// `pathman: crashed at FILE:LINE: why`, on one line whatever `why` holds.
fn crash_line(at: Option<(&str, u32)>, why: &str) -> String {
    let at = at.map(|(f, l)| format!(" at {f}:{l}")).unwrap_or_default();
    let why: String = why
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("pathman: crashed{at}: {why}")
}

fn main() {
    one_line_panics();
    let args: Vec<String> = std::env::args().collect();
    let prog = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("pathman");
    let code = match prog {
        "pathmand" => pathman::daemon::main(&args[1..]),
        "pathmanctl" => pathman::ctl::main(&args[1..]),
        _ => run(&args),
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::crash_line;

    #[test]
    fn a_crash_is_one_line_with_place_and_reason() {
        assert_eq!(
            crash_line(Some(("src/x.rs", 7)), "bad\nthing\r"),
            "pathman: crashed at src/x.rs:7: bad thing "
        );
        assert_eq!(crash_line(None, "why"), "pathman: crashed: why");
    }
}
