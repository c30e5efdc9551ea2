//! Settings files are written on the worker thread (`edge::worker`), in the
//! order the loop asks for them: an fsync on slow flash takes tens to
//! hundreds of milliseconds, and the loop (failover, DHCP, the tethering
//! server, D-Bus) must not wait for it. What a write makes of the file is
//! decided in the loop (the closure's captured settings); the worker only
//! carries it out and reports the result as an [`Event::Saved`](super::Event).

use crate::config::store::StoreError;
use crate::core::model::Action;
use crate::edge::worker;

/// A write, run on the worker.
pub(super) type Write = Box<dyn FnOnce() -> Result<(), StoreError> + Send>;

/// The loop's handle on the writes.
pub(super) struct Saver {
    done: smol::channel::Sender<super::Event>,
}

impl Saver {
    /// Results go to the loop's event channel.
    pub fn start(done: smol::channel::Sender<super::Event>) -> Saver {
        Saver { done }
    }

    /// Queues a write (`what` names it in the result).
    pub fn submit(&self, what: Action, run: Write) {
        if !worker::available() {
            // Written here. The loop is this thread, so it must not wait on
            // its own channel: a full queue loses only the result.
            let error = run().err().map(|e| e.to_string());
            let _ = self.done.try_send(super::Event::Saved { what, error });
            return;
        }
        let done = self.done.clone();
        worker::run(Box::new(move || {
            let error = run().err().map(|e| e.to_string());
            let _ = done.send_blocking(super::Event::Saved { what, error });
        }));
    }

    /// Waits until every write queued before is done (at shutdown).
    pub fn flush(&self) {
        worker::flush();
    }
}
