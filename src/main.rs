//! The multi-call binary: `pathman daemon …` (or `pathmand`) and
//! `pathman ctl …` (or `pathmanctl`), like busybox.

use std::path::Path;

const USAGE: &str = "Usage: pathman daemon [OPTIONS]   (or pathmand)
       pathman ctl [COMMAND]        (or pathmanctl)
       pathman --version";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let prog = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("pathman");
    let code = match prog {
        "pathmand" => pathman::daemon::main(&args[1..]),
        "pathmanctl" => pathman::ctl::main(&args[1..]),
        _ => match args.get(1).map(String::as_str) {
            Some("daemon") => pathman::daemon::main(&args[2..]),
            Some("ctl") => pathman::ctl::main(&args[2..]),
            Some("-v") | Some("--version") => {
                println!("pathman {}", env!("CARGO_PKG_VERSION"));
                0
            }
            _ => {
                eprintln!("{USAGE}");
                2
            }
        },
    };
    std::process::exit(code);
}
