//! Settings files are written on a thread of their own, in the order the
//! loop asks for them: an fsync on slow flash takes tens to hundreds of
//! milliseconds, and the loop (failover, DHCP, the tethering server, D-Bus)
//! must not wait for it. What a write makes of the file is decided in the
//! loop (the closure's captured settings); the thread only carries it out
//! and reports the result as an [`Event::Saved`](super::Event).

use std::sync::mpsc;

use crate::config::store::StoreError;
use crate::core::model::Action;

/// A write, run on the saver's thread.
pub(super) type Write = Box<dyn FnOnce() -> Result<(), StoreError> + Send>;

enum Job {
    Write(Action, Write),
    Flush(mpsc::Sender<()>),
}

/// The loop's handle on the saver thread.
pub(super) struct Saver {
    /// None when no thread could be started: writes run inline then.
    jobs: Option<mpsc::Sender<Job>>,
    done: smol::channel::Sender<super::Event>,
}

/// The saver thread's stack: a keyfile read, merged and written.
const STACK: usize = 128 * 1024;

impl Saver {
    /// Starts the thread; results go to the loop's event channel.
    pub fn start(done: smol::channel::Sender<super::Event>) -> Saver {
        let (tx, rx) = mpsc::channel::<Job>();
        let report = done.clone();
        let spawned = std::thread::Builder::new()
            .name("pathman-save".into())
            .stack_size(STACK)
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Write(what, run) => {
                            let error = run().err().map(|e| e.to_string());
                            let _ = report.send_blocking(super::Event::Saved { what, error });
                        }
                        Job::Flush(ack) => {
                            let _ = ack.send(());
                        }
                    }
                }
            });
        let jobs = match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                log::warn!("settings: no writer thread ({e}); files are written in the loop");
                None
            }
        };
        Saver { jobs, done }
    }

    /// Queues a write (`what` names it in the result).
    pub fn submit(&self, what: Action, run: Write) {
        let job = Job::Write(what, run);
        let job = match &self.jobs {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        if let Job::Write(what, run) = job {
            let error = run().err().map(|e| e.to_string());
            let _ = self.done.try_send(super::Event::Saved { what, error });
        }
    }

    /// Waits until every write queued before is done (at shutdown).
    pub fn flush(&self) {
        let Some(tx) = &self.jobs else { return };
        let (ack, wait) = mpsc::channel();
        if tx.send(Job::Flush(ack)).is_ok() {
            let _ = wait.recv();
        }
    }
}
