//! Protocol tasks: one generic driver for every sans-I/O machine (DHCP with
//! IPv4LL, SNTP, the online check), so each machine stays a pure, unit-tested
//! state machine and each transport only moves bytes.
//!
//! A [`Machine`] has the smoltcp shape: [`Machine::process`] for input,
//! [`Machine::dispatch`] for output, [`Machine::poll_at`] for the next
//! deadline and [`Machine::poll_event`] for what it tells the core. A
//! [`Transport`] owns the sockets of one machine. [`drive`] runs the two
//! together until told to stop, sending events through the daemon's one
//! event channel.

use std::future::Future;
use std::time::{Instant, SystemTime};

use smol::channel::Receiver;
use smol::future::FutureExt;

/// When a machine next wants [`Machine::dispatch`] called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollAt {
    /// As soon as possible.
    Now,
    /// At this instant.
    At(Instant),
    /// Only after new input.
    Idle,
}

impl PollAt {
    /// The earlier of two deadlines.
    pub fn min(self, other: PollAt) -> PollAt {
        match (self, other) {
            (PollAt::Now, _) | (_, PollAt::Now) => PollAt::Now,
            (PollAt::At(x), PollAt::At(y)) => PollAt::At(x.min(y)),
            (PollAt::At(x), PollAt::Idle) | (PollAt::Idle, PollAt::At(x)) => PollAt::At(x),
            (PollAt::Idle, PollAt::Idle) => PollAt::Idle,
        }
    }
}

/// The time a machine step happens at: the monotonic clock for intervals
/// and the wall clock for protocols that carry it (NTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

impl Now {
    /// Both clocks, read now.
    pub fn read() -> Now {
        Now {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// Outputs one step may send at most, so a machine that keeps returning
/// output cannot starve the loop.
const MAX_OUTPUTS_PER_STEP: usize = 16;

/// A sans-I/O protocol machine.
pub trait Machine {
    /// What the transport delivers.
    type Input;
    /// What the transport sends.
    type Output;
    /// What the machine tells the core.
    type Event;
    /// A new configuration for a running machine.
    type Config;

    /// When [`Machine::dispatch`] is next due.
    fn poll_at(&self) -> PollAt;
    /// The next output due at `now`, if any.
    fn dispatch(&mut self, now: &Now) -> Option<Self::Output>;
    /// Feeds one input.
    fn process(&mut self, now: &Now, input: Self::Input);
    /// The next event for the core, if any.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// Takes a new configuration without restarting.
    fn reconfigure(&mut self, config: Self::Config);
    /// The last output before the task ends (DHCP RELEASE), if `graceful`.
    fn stop(&mut self, _now: &Now, _graceful: bool) -> Option<Self::Output> {
        None
    }
}

/// The sockets of one machine.
#[allow(async_fn_in_trait)]
pub trait Transport<M: Machine> {
    /// Waits for the next input; stays pending while there is nothing to read.
    async fn recv(&mut self) -> M::Input;
    /// Sends one output.
    async fn send(&mut self, machine: &M, out: M::Output);
    /// Opens and closes sockets to fit the machine's state, before each wait;
    /// returns when to try again if a socket could not be opened.
    fn prepare(&mut self, _machine: &M, _now: Instant) -> Option<Instant> {
        None
    }
    /// Logs or adjusts sockets for an event before it goes to the core.
    fn on_event(&mut self, _machine: &M, _event: &M::Event) {}
}

/// What the supervisor tells a running task.
#[derive(Debug)]
pub enum Control<C> {
    /// A new configuration.
    Reconfigure(C),
    /// End; `graceful` lets the machine say goodbye first (DHCP RELEASE).
    Stop { graceful: bool },
}

/// Runs `machine` over `transport` until a [`Control::Stop`] arrives (or the
/// control channel closes); every event goes through `emit`, which returns
/// false once nobody listens (the task then ends). `observe` sees the machine
/// before each wait, once the step's outputs and events are out: how a task
/// shows the daemon what it counts (the DHCP server's [`Stats`](crate::dhcp::server::Stats)).
pub async fn drive<M, T, E, F, O>(
    mut machine: M,
    mut transport: T,
    control: Receiver<Control<M::Config>>,
    mut emit: E,
    mut observe: O,
) where
    M: Machine,
    T: Transport<M>,
    E: FnMut(M::Event) -> F,
    F: Future<Output = bool>,
    O: FnMut(&M),
{
    enum Wake<I, C> {
        Input(I),
        Control(Option<Control<C>>),
        Timer,
    }
    loop {
        let now = Now::read();
        for _ in 0..MAX_OUTPUTS_PER_STEP {
            match machine.dispatch(&now) {
                Some(out) => transport.send(&machine, out).await,
                None => break,
            }
        }
        while let Some(ev) = machine.poll_event() {
            transport.on_event(&machine, &ev);
            if !emit(ev).await {
                return;
            }
        }
        let retry = transport.prepare(&machine, now.mono);
        observe(&machine);
        let mut deadline = machine.poll_at();
        if let Some(t) = retry {
            deadline = deadline.min(PollAt::At(t));
        }
        let timer = async {
            match deadline {
                PollAt::Now => {}
                PollAt::At(t) => {
                    smol::Timer::at(t).await;
                }
                PollAt::Idle => std::future::pending::<()>().await,
            }
            Wake::Timer
        };
        let wake = async { Wake::Input(transport.recv().await) }
            .or(async { Wake::Control(control.recv().await.ok()) })
            .or(timer)
            .await;
        let now = Now::read();
        match wake {
            Wake::Input(input) => machine.process(&now, input),
            Wake::Control(Some(Control::Reconfigure(c))) => machine.reconfigure(c),
            Wake::Control(stop) => {
                let graceful = matches!(stop, Some(Control::Stop { graceful: true }));
                if let Some(out) = machine.stop(&now, graceful) {
                    transport.send(&machine, out).await;
                }
                while let Some(ev) = machine.poll_event() {
                    transport.on_event(&machine, &ev);
                    if !emit(ev).await {
                        return;
                    }
                }
                return;
            }
            Wake::Timer => {}
        }
    }
}

/// A running task: its control channel and its future.
pub struct Handle<C> {
    control: smol::channel::Sender<Control<C>>,
    task: smol::Task<()>,
}

impl<C> Handle<C> {
    /// Starts `machine` over `transport` on `ex`.
    pub fn spawn<M, T, E, F>(
        ex: &smol::LocalExecutor<'static>,
        machine: M,
        transport: T,
        emit: E,
    ) -> Handle<M::Config>
    where
        M: Machine<Config = C> + 'static,
        T: Transport<M> + 'static,
        E: FnMut(M::Event) -> F + 'static,
        F: Future<Output = bool> + 'static,
        C: 'static,
    {
        Handle::spawn_observed(ex, machine, transport, emit, |_: &M| {})
    }

    /// [`Handle::spawn`], with `observe` called on the machine before each
    /// wait (see [`drive`]).
    pub fn spawn_observed<M, T, E, F, O>(
        ex: &smol::LocalExecutor<'static>,
        machine: M,
        transport: T,
        emit: E,
        observe: O,
    ) -> Handle<M::Config>
    where
        M: Machine<Config = C> + 'static,
        T: Transport<M> + 'static,
        E: FnMut(M::Event) -> F + 'static,
        F: Future<Output = bool> + 'static,
        O: FnMut(&M) + 'static,
        C: 'static,
    {
        let (tx, rx) = smol::channel::bounded(4);
        let task = ex.spawn(drive(machine, transport, rx, emit, observe));
        Handle { control: tx, task }
    }

    /// Hands the task a new configuration.
    pub async fn reconfigure(&self, config: C) {
        // A closed channel means the task ended already.
        let _ = self.control.send(Control::Reconfigure(config)).await;
    }

    /// Ends the task and waits for it.
    pub async fn stop(self, graceful: bool) {
        let _ = self.control.send(Control::Stop { graceful }).await;
        self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    /// Counts inputs; sends one output per input; reports every 3rd input.
    struct Echo {
        pending: Vec<u32>,
        events: Vec<u32>,
        seen: u32,
        wake_at: Option<Instant>,
        stopped: bool,
    }

    impl Machine for Echo {
        type Input = u32;
        type Output = u32;
        type Event = u32;
        type Config = Instant;
        fn poll_at(&self) -> PollAt {
            match self.wake_at {
                Some(t) => PollAt::At(t),
                None => PollAt::Idle,
            }
        }
        fn dispatch(&mut self, now: &Now) -> Option<u32> {
            if self.wake_at.is_some_and(|t| t <= now.mono) {
                self.wake_at = None;
                self.events.push(1000);
            }
            self.pending.pop()
        }
        fn process(&mut self, _: &Now, input: u32) {
            self.seen += 1;
            self.pending.push(input * 2);
            if self.seen.is_multiple_of(3) {
                self.events.push(self.seen);
            }
        }
        fn poll_event(&mut self) -> Option<u32> {
            if self.events.is_empty() {
                None
            } else {
                Some(self.events.remove(0))
            }
        }
        fn reconfigure(&mut self, at: Instant) {
            self.wake_at = Some(at);
        }
        fn stop(&mut self, _: &Now, graceful: bool) -> Option<u32> {
            self.stopped = true;
            graceful.then_some(7)
        }
    }

    struct Pipe {
        rx: smol::channel::Receiver<u32>,
        sent: Rc<RefCell<Vec<u32>>>,
    }

    impl Transport<Echo> for Pipe {
        async fn recv(&mut self) -> u32 {
            match self.rx.recv().await {
                Ok(v) => v,
                Err(_) => std::future::pending().await,
            }
        }
        async fn send(&mut self, _: &Echo, out: u32) {
            self.sent.borrow_mut().push(out);
        }
    }

    #[test]
    fn the_driver_feeds_inputs_sends_outputs_and_forwards_events() {
        let ex: &'static smol::LocalExecutor<'static> =
            Box::leak(Box::new(smol::LocalExecutor::new()));
        let (in_tx, in_rx) = smol::channel::unbounded();
        let sent = Rc::new(RefCell::new(Vec::new()));
        let events = Rc::new(RefCell::new(Vec::new()));
        let machine = Echo {
            pending: Vec::new(),
            events: Vec::new(),
            seen: 0,
            wake_at: None,
            stopped: false,
        };
        let transport = Pipe {
            rx: in_rx,
            sent: sent.clone(),
        };
        let ev = events.clone();
        let handle = Handle::spawn(ex, machine, transport, move |e| {
            ev.borrow_mut().push(e);
            async { true }
        });
        smol::block_on(ex.run(async {
            for i in 1..=3 {
                in_tx.send(i).await.unwrap();
            }
            // The timer configured later fires and the machine reports it.
            handle
                .reconfigure(Instant::now() + Duration::from_millis(20))
                .await;
            while !events.borrow().contains(&1000) {
                smol::Timer::after(Duration::from_millis(5)).await;
            }
            handle.stop(true).await;
        }));
        assert_eq!(
            *sent.borrow(),
            vec![2, 4, 6, 7],
            "outputs, then the goodbye"
        );
        assert_eq!(*events.borrow(), vec![3, 1000]);
    }

    #[test]
    fn the_observer_sees_every_input_before_the_next_wait() {
        let ex: &'static smol::LocalExecutor<'static> =
            Box::leak(Box::new(smol::LocalExecutor::new()));
        let (in_tx, in_rx) = smol::channel::unbounded();
        let machine = Echo {
            pending: Vec::new(),
            events: Vec::new(),
            seen: 0,
            wake_at: None,
            stopped: false,
        };
        let transport = Pipe {
            rx: in_rx,
            sent: Rc::new(RefCell::new(Vec::new())),
        };
        let seen = Rc::new(std::cell::Cell::new(None));
        let cell = seen.clone();
        let handle = Handle::spawn_observed(
            ex,
            machine,
            transport,
            |_| async { true },
            move |m: &Echo| cell.set(Some(m.seen)),
        );
        smol::block_on(ex.run(async {
            while seen.get().is_none() {
                smol::future::yield_now().await;
            }
            assert_eq!(seen.get(), Some(0), "before the first input");
            for i in 1..=2 {
                in_tx.send(i).await.unwrap();
            }
            while seen.get() != Some(2) {
                smol::future::yield_now().await;
            }
            handle.stop(false).await;
        }));
        assert_eq!(seen.get(), Some(2));
    }
}
