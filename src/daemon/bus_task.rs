//! The loop's end of a bus task's command channel: the supplicant task
//! (WiFi) and the oFono task (cellular) each take commands from the loop on
//! one. A task lives as long as its bus connection; it ends when its channel
//! is closed (the bus went) or replaced (the bus came back: a new task).

use smol::channel::{Receiver, Sender};

/// Commands a task may have waiting; more are dropped with a warning (the
/// loop never waits on a task).
pub(super) const QUEUE: usize = 64;

/// The sender of a task's commands, while the task runs.
pub(super) struct Commands<C> {
    tx: Option<Sender<C>>,
}

impl<C> Default for Commands<C> {
    fn default() -> Self {
        Commands { tx: None }
    }
}

impl<C: core::fmt::Debug> Commands<C> {
    /// A channel for a new task; the task before ends with its channel.
    pub fn open(&mut self) -> Receiver<C> {
        let (tx, rx) = smol::channel::bounded(QUEUE);
        self.tx = Some(tx);
        rx
    }

    /// The bus is gone: the task ends with its channel.
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// Whether a task runs to take commands.
    pub fn is_open(&self) -> bool {
        self.tx.is_some()
    }

    /// Gives `cmd` to the task (`who` names it in the log); without a task,
    /// or with its queue full, the command is dropped and logged.
    pub fn send(&self, who: &str, cmd: C) {
        let Some(tx) = &self.tx else {
            log::debug!("{who}: no bus, dropped {cmd:?}");
            return;
        };
        if let Err(e) = tx.try_send(cmd) {
            log::warn!(
                "{who}: command queue full ({QUEUE}), dropped {:?}",
                e.into_inner()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_reach_the_open_channel_and_a_full_or_closed_one_drops_them() {
        let mut c = Commands::<u32>::default();
        assert!(!c.is_open());
        c.send("t", 1); // dropped: no task
        let rx = c.open();
        assert!(c.is_open());
        for i in 0..QUEUE as u32 + 3 {
            c.send("t", i);
        }
        let got: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            got,
            (0..QUEUE as u32).collect::<Vec<_>>(),
            "the first QUEUE, in order"
        );
        let old = rx;
        let rx = c.open();
        assert!(old.is_closed(), "a new task's channel ends the old task's");
        c.send("t", 7);
        assert_eq!(rx.try_recv().ok(), Some(7));
        c.close();
        assert!(!c.is_open());
        assert!(rx.is_closed());
    }
}
