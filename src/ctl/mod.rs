//! pathmanctl: the command-line client, speaking connmanctl's commands and output formats
//! (SPEC §10) to pathman over `net.connman`.
//!
//! Everything runs on one `smol::LocalExecutor` on the calling thread: the command, zbus's
//! executor ticker, the monitor tasks, a session's notifier and, in interactive mode or with a
//! session, the stdin reader, and with `agent on` the agent's method-call reader.

pub mod agent;
pub mod commands;
pub mod format;
pub mod monitor;
pub mod session;
#[cfg(test)]
mod test_util;

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use crate::dbus::Connection;
use smol::{Async, LocalExecutor};

use crate::dbus::bus;
use commands::{Command, CtlError, ParseError, USAGE};
use monitor::{Monitor, Sink};

/// Runs pathmanctl with `args` (without the program name); no arguments means interactive
/// mode. Returns the process exit code: 0 on success (and for `help`, `--help`, `-h`), 1 on
/// any error.
pub fn main(args: &[String]) -> i32 {
    // The options every command-line tool answers, besides connmanctl's own `help` command.
    if matches!(args, [only] if only == "--help" || only == "-h") {
        return print_usage(&mut std::io::stdout());
    }
    // 'static: everything spawned on it owns its data, and the executor outlives the run.
    let ex: LocalExecutor<'static> = LocalExecutor::new();
    smol::block_on(ex.run(run(&ex, args)))
}

async fn run(ex: &LocalExecutor<'static>, args: &[String]) -> i32 {
    // A command line that cannot be parsed, and help, need no bus.
    let one_shot = if args.is_empty() {
        None
    } else {
        match commands::parse(args) {
            Ok(Command::Help) => return print_usage(&mut std::io::stdout()),
            Ok(Command::Exit) => return 0,
            Ok(cmd) => Some(cmd),
            Err(e) => {
                report(format_args!("{e}"));
                if matches!(e, ParseError::UnknownCommand(_)) {
                    print_usage(&mut std::io::stderr());
                }
                return 1;
            }
        }
    };
    let conn = match bus::connect_system().await {
        Ok(conn) => conn,
        Err(e) => {
            report(format_args!("{}", CtlError::Connect(e)));
            return 1;
        }
    };
    let _ticker = bus::spawn_ticker(ex, &conn);
    // Monitor and session output share stdout.
    let out: Sink = Rc::new(RefCell::new(std::io::stdout()));
    let mut monitor = Monitor::new(ex, &conn, out.clone());
    match one_shot {
        Some(cmd) => match run_one_shot(ex, &conn, &mut monitor, &out, &cmd).await {
            Ok(()) => 0,
            Err(e) => {
                report(format_args!("{e}"));
                1
            }
        },
        None => interactive(ex, &conn, &mut monitor, &out).await,
    }
}

/// Writes one error line to stderr. A closed stderr is ignored: there is nobody left to tell,
/// and the exit code still says it failed.
fn report(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

fn print_usage(out: &mut dyn Write) -> i32 {
    match out.write_all(USAGE.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

async fn run_one_shot(
    ex: &LocalExecutor<'static>,
    conn: &Connection,
    monitor: &mut Monitor<'_>,
    out: &Sink,
    cmd: &Command,
) -> Result<(), CtlError> {
    match cmd {
        Command::Bus(c) => commands::execute(conn, c, &mut std::io::stdout()).await,
        // A fresh process has nothing to stop.
        Command::Monitor { on: false, .. } => Ok(()),
        Command::Monitor { scope, on: true } => {
            monitor.set(*scope, true).await?;
            monitor.wait().await
        }
        Command::Session(options) => {
            let mut input = LineReader::new();
            let prompt = std::io::stdin().is_terminal();
            session::run(ex, conn, options, input.lines(), out.clone(), prompt).await
        }
        // As connmanctl: an agent needs someone at the keyboard after the command returns.
        Command::Agent(_) => Err(CtlError::Message(
            "Error: Not supported in non-interactive mode".into(),
        )),
        Command::Help | Command::Exit => Ok(()),
    }
}

/// The interactive loop: one command per line until `exit`, `quit` or end of input.
async fn interactive(
    ex: &LocalExecutor<'static>,
    conn: &Connection,
    monitor: &mut Monitor<'_>,
    out: &Sink,
) -> i32 {
    let prompt = std::io::stdin().is_terminal();
    let mut input = LineReader::new();
    let mut agent = agent::Agent::new();
    let code = interactive_loop(ex, conn, monitor, out, prompt, &mut input, &mut agent).await;
    agent.shut_down(conn).await;
    code
}

async fn interactive_loop(
    ex: &LocalExecutor<'static>,
    conn: &Connection,
    monitor: &mut Monitor<'_>,
    out: &Sink,
    prompt: bool,
    input: &mut LineReader,
    agent: &mut agent::Agent,
) -> i32 {
    loop {
        if prompt {
            let mut out = out.borrow_mut();
            if out
                .write_all(b"pathmanctl> ")
                .and_then(|()| out.flush())
                .is_err()
            {
                return 1;
            }
        }
        // The agent's requests are answered between commands too.
        let next = smol::future::or(async { Ok(input.next_line().await) }, async {
            Err(agent.next().await)
        })
        .await;
        let next = match next {
            Ok(line) => line,
            Err(request) => {
                if agent
                    .handle(conn, request, input, out, prompt)
                    .await
                    .is_err()
                {
                    return 1;
                }
                continue;
            }
        };
        let line = match next {
            Ok(Some(line)) => line,
            Ok(None) => return 0,
            Err(e) => {
                report(format_args!("Error: cannot read input: {e}"));
                return 1;
            }
        };
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        if words.is_empty() {
            continue;
        }
        let result = match commands::parse(&words) {
            Ok(Command::Exit) => return 0,
            Ok(Command::Help) => {
                print_usage(&mut std::io::stdout());
                Ok(())
            }
            Ok(Command::Monitor { scope, on }) => monitor.set(scope, on).await,
            // A command may wait for the daemon while the daemon waits for the agent (connect
            // asks for the passphrase), so requests are answered while it runs.
            Ok(Command::Bus(c)) => {
                let mut stdout = std::io::stdout();
                let run = commands::execute(conn, &c, &mut stdout);
                match agent.serve_during(conn, run, input, out, prompt).await {
                    Ok(result) => result,
                    Err(_) => return 1,
                }
            }
            Ok(Command::Agent(on)) => agent.set(ex, conn, on, out).await,
            // The session reads the following lines until it ends, then the prompt is back.
            Ok(Command::Session(options)) => {
                session::run(ex, conn, &options, input.lines(), out.clone(), prompt).await
            }
            Err(e) => Err(CtlError::Parse(e)),
        };
        if let Err(e) = result {
            report(format_args!("{e}"));
        }
    }
}

/// Lines from stdin without blocking the executor, so monitor output keeps flowing while the
/// user types. Reads go straight to fd 0 (no std buffering) so readiness and data agree.
pub(crate) struct LineReader {
    /// `None` when stdin cannot be polled (a regular file): then reads block, which for a file
    /// is instantaneous.
    source: Option<Async<std::io::Stdin>>,
    pending: Vec<u8>,
    eof: bool,
}

impl LineReader {
    fn new() -> Self {
        // new_nonblocking leaves O_NONBLOCK off: stdin is shared with the parent shell, which
        // must not find its terminal switched to non-blocking mode after we exit.
        Self {
            source: Async::new_nonblocking(std::io::stdin()).ok(),
            pending: Vec::new(),
            eof: false,
        }
    }

    /// The remaining lines as a stream; it ends at end of input.
    fn lines(&mut self) -> impl smol::stream::Stream<Item = std::io::Result<String>> + '_ {
        smol::stream::unfold(self, |reader| async move {
            reader
                .next_line()
                .await
                .transpose()
                .map(|line| (line, reader))
        })
    }

    async fn next_line(&mut self) -> std::io::Result<Option<String>> {
        Ok(self
            .next_raw_line()
            .await?
            .map(|line| line.trim_end().to_owned()))
    }

    /// The next line without its newline (and carriage return) but otherwise as typed:
    /// blanks are part of a passphrase.
    pub(crate) async fn next_raw_line(&mut self) -> std::io::Result<Option<String>> {
        loop {
            let line_end = match self.pending.iter().position(|&b| b == b'\n') {
                Some(end) => Some(end + 1),
                // The last line may lack its newline.
                None if self.eof && !self.pending.is_empty() => Some(self.pending.len()),
                None if self.eof => return Ok(None),
                None => None,
            };
            if let Some(end) = line_end {
                let mut line: Vec<u8> = self.pending.drain(..end).collect();
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if let Some(source) = &self.source {
                source.readable().await?;
            }
            let mut chunk = [0u8; 4096];
            let fd = std::io::stdin().as_raw_fd();
            // SAFETY: `chunk` is a valid writable buffer of the length passed; fd 0 stays open
            // for the life of the process.
            let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                match err.kind() {
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock => continue,
                    _ => return Err(err),
                }
            }
            let n = n.unsigned_abs();
            if n == 0 {
                self.eof = true;
            } else {
                self.pending.extend_from_slice(&chunk[..n]);
            }
        }
    }
}
