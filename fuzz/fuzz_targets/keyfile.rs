//! The one keyfile parser (`src/config/keyfile.rs`) and everything that reads through it:
//! main.conf, board configs, session policy files and the state files. Any bytes either
//! fail with an error or parse; a parsed keyfile writes out (`Display`) to text that parses
//! back to the same keyfile; a service's settings read from it write back
//! (`service_to_keyfile`) to a file that reads back to the same settings, so a restart
//! never changes what the user configured.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathman::config::board::Board;
use pathman::config::keyfile::KeyFile;
use pathman::config::main_conf::MainConf;
use pathman::config::policy::parse_policies;
use pathman::config::store::{global_to_keyfile, parse_global, parse_service, service_to_keyfile};

const SRC: &str = "fuzz";

fuzz_target!(|data: &[u8]| {
    // Every reader that takes raw bytes.
    let _ = MainConf::parse_over(MainConf::default(), data, SRC);
    let _ = Board::parse(data, SRC);
    let _ = parse_policies(data, SRC);

    let Ok((kf, _warnings)) = KeyFile::parse_bytes(data, SRC) else {
        return;
    };
    let text = kf.to_string();
    match KeyFile::parse(&text, SRC) {
        Ok((again, _)) => assert_eq!(kf, again, "write + parse changed the keyfile:\n{text}"),
        Err(e) => panic!("a written keyfile does not parse: {e:?}\n{text}"),
    }

    // State files: `settings` ([global] and technologies) and one file per service.
    let (global, _) = parse_global(&kf, SRC);
    let mut out = KeyFile::new();
    if global_to_keyfile(&mut out, &global).is_ok() {
        let (again, _) = parse_global(&out, SRC);
        assert_eq!(
            format!("{global:?}"),
            format!("{again:?}"),
            "global settings changed on write + read"
        );
    }
    let ids: Vec<String> = kf.groups().map(str::to_string).collect();
    for id in ids.iter().take(4) {
        let (record, _) = parse_service(&kf, id, SRC);
        let mut out = KeyFile::new();
        let name = record.name.clone().unwrap_or_default();
        if let Err(e) =
            service_to_keyfile(&mut out, id, &name, &record.config, "2026-01-01T00:00:00Z")
        {
            // Writing may refuse only what a keyfile cannot hold (the parser never yields it).
            panic!("service [{id}] read from a keyfile does not write back: {e:?}");
        }
        let (again, _) = parse_service(&out, id, SRC);
        assert_eq!(
            record.config, again.config,
            "service [{id}] settings changed on write + read:\n{out}"
        );
    }
});
