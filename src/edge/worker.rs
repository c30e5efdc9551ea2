//! One background thread for the syscalls that may block the loop for long
//! on a slow machine: settings files' fsyncs (tens to hundreds of ms on slow
//! flash) and packet sockets' closes (each waits for an RCU grace period,
//! 10–30 ms). Jobs run in the order they were given; a job never touches
//! the loop's state (it reports through a channel if it must). The queue
//! holds [`QUEUE`] jobs: with that many waiting, the loop waits for the
//! worker to take one, so a storm of link flaps cannot grow it.

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

/// Jobs waiting at most (each a boxed closure of a few dozen bytes).
pub const QUEUE: usize = 256;

static WORKER: OnceLock<Option<mpsc::SyncSender<Msg>>> = OnceLock::new();

fn worker() -> Option<&'static mpsc::SyncSender<Msg>> {
    WORKER.get_or_init(|| spawn(QUEUE)).as_ref()
}

/// A worker thread whose queue holds `queue` jobs.
fn spawn(queue: usize) -> Option<mpsc::SyncSender<Msg>> {
    let (tx, rx) = mpsc::sync_channel::<Msg>(queue);
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
}

fn send(tx: &mpsc::SyncSender<Msg>, job: Job) -> Result<(), Job> {
    tx.send(Msg::Run(job))
        .map_err(|mpsc::SendError(m)| match m {
            Msg::Run(job) => job,
            Msg::Flush(_) => Box::new(|| {}),
        })
}

/// Whether the worker thread runs.
pub fn available() -> bool {
    worker().is_some()
}

/// Runs `job` on the worker, or here when there is no worker (it could not
/// be started, or is gone). With [`QUEUE`] jobs waiting this blocks until the
/// worker takes one, so jobs keep their order and the queue its bound.
pub fn run(job: Job) {
    let job = match worker() {
        Some(tx) => match send(tx, job) {
            Ok(()) => return,
            Err(job) => job,
        },
        None => job,
    };
    job();
}

/// Drops `value` on the worker (inline without one): for values whose drop
/// blocks (packet sockets).
pub fn drop_later<T: Send + 'static>(value: T) {
    run(Box::new(move || drop(value)));
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
            run(Box::new(move || s.lock().unwrap().push(i)));
        }
        flush();
        assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_queue_waits_for_the_worker_and_keeps_the_order() {
        // A worker of its own (the global one is shared with other tests),
        // held by its first job until the queue is seen full.
        const Q: usize = 4;
        let tx = spawn(Q).expect("a worker thread");
        let (go, wait) = mpsc::channel::<()>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (started, running) = mpsc::channel::<()>();
        let s = seen.clone();
        assert!(send(
            &tx,
            Box::new(move || {
                let _ = started.send(());
                let _ = wait.recv();
                s.lock().unwrap().push(0);
            })
        )
        .is_ok());
        running.recv().unwrap();
        for i in 1..=Q {
            let s = seen.clone();
            assert!(send(&tx, Box::new(move || s.lock().unwrap().push(i))).is_ok());
        }
        let (ack, _) = mpsc::channel();
        assert!(
            matches!(
                tx.try_send(Msg::Flush(ack)),
                Err(mpsc::TrySendError::Full(_))
            ),
            "the queue holds {Q} jobs"
        );
        // The next jobs wait for room; the worker is let go from elsewhere.
        let releaser = std::thread::spawn(move || go.send(()).unwrap());
        for i in Q + 1..Q + 10 {
            let s = seen.clone();
            assert!(send(&tx, Box::new(move || s.lock().unwrap().push(i))).is_ok());
        }
        releaser.join().unwrap();
        let (ack, done) = mpsc::channel();
        tx.send(Msg::Flush(ack)).unwrap();
        done.recv().unwrap();
        assert_eq!(*seen.lock().unwrap(), (0..Q + 10).collect::<Vec<_>>());
    }
}
