//! One background thread for the syscalls that may block the loop for long
//! on a slow machine: settings files' fsyncs (tens to hundreds of ms on slow
//! flash) and packet sockets' closes (each waits for an RCU grace period,
//! 10–30 ms). Jobs run in the order they were given; a job never touches
//! the loop's state (it reports through a channel if it must).

use std::sync::mpsc;
use std::sync::OnceLock;

/// A job for the worker.
pub type Job = Box<dyn FnOnce() + Send>;

enum Msg {
    Run(Job),
    Flush(mpsc::Sender<()>),
}

/// The worker's stack: a keyfile read, merged and written is the biggest job.
const STACK: usize = 128 * 1024;

static WORKER: OnceLock<Option<mpsc::Sender<Msg>>> = OnceLock::new();

fn worker() -> Option<&'static mpsc::Sender<Msg>> {
    WORKER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Msg>();
            let spawned = std::thread::Builder::new()
                .name("pathman-worker".into())
                .stack_size(STACK)
                .spawn(move || {
                    for msg in rx {
                        match msg {
                            Msg::Run(job) => job(),
                            Msg::Flush(ack) => {
                                let _ = ack.send(());
                            }
                        }
                    }
                });
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    log::warn!("no worker thread ({e}): slow syscalls run in the loop");
                    None
                }
            }
        })
        .as_ref()
}

/// Whether the worker thread runs.
pub fn available() -> bool {
    worker().is_some()
}

/// Runs `job` on the worker. Gives it back when there is no worker (the
/// caller runs it itself).
pub fn run(job: Job) -> Result<(), Job> {
    let Some(tx) = worker() else {
        return Err(job);
    };
    tx.send(Msg::Run(job))
        .map_err(|mpsc::SendError(m)| match m {
            Msg::Run(job) => job,
            Msg::Flush(_) => Box::new(|| {}),
        })
}

/// Drops `value` on the worker (inline without one): for values whose drop
/// blocks (packet sockets).
pub fn drop_later<T: Send + 'static>(value: T) {
    if let Err(job) = run(Box::new(move || drop(value))) {
        job();
    }
}

/// Waits until every job given before is done.
pub fn flush() {
    let Some(tx) = worker() else { return };
    let (ack, wait) = mpsc::channel();
    if tx.send(Msg::Flush(ack)).is_ok() {
        let _ = wait.recv();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn jobs_run_in_order_and_flush_waits_for_them() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let s = seen.clone();
            if let Err(job) = run(Box::new(move || s.lock().unwrap().push(i))) {
                job();
            }
        }
        flush();
        assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<_>>());
    }
}
