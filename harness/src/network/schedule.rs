//! A chaos schedule at work: the [`ChaosGuard`] the test holds, and the thread of the test
//! process, `nstest-chaos`, that wakes each period, heals the last fault and applies the
//! next one drawn (see `chaos`) through the switch.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::chaos::{self, Chaos, Event, Kind};
use super::rng::Rng;
use super::switch::{Direction, Lan};
use crate::wire::Note;

/// A chaos schedule running in the background (see [`Network::chaos`]). Stopping it, or
/// dropping it, heals the fault it has in force: the network is whole again.
///
/// [`Network::chaos`]: super::Network::chaos
#[must_use = "a chaos schedule stops as soon as its guard is dropped: bind it, as `let _chaos = ...`"]
pub struct ChaosGuard {
    seed: u64,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the guard and the schedule's thread share.
#[derive(Default)]
struct Shared {
    state: Mutex<Progress>,
    wake: Condvar,
}

#[derive(Default)]
struct Progress {
    events: Vec<String>,
    stopping: bool,
    /// Why the schedule ended early: a fault the kernel refused.
    failed: Option<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ChaosGuard {
    /// Starts `chaos` on `lan` with `seed`, telling the runner the seed first.
    pub(super) fn start(lan: Arc<Lan>, chaos: Chaos, seed: u64) -> ChaosGuard {
        chaos.check();
        crate::process::send_note(&Note::ChaosSeed(seed));
        let shared = Arc::new(Shared::default());
        let schedule = Schedule {
            lan,
            kinds: chaos.kinds(),
            every: chaos.period(),
            rng: Rng::new(seed),
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("nstest-chaos".into())
            .spawn(move || schedule.run())
            .unwrap_or_else(|e| panic!("nstest network: spawning the chaos thread: {e}"));
        ChaosGuard {
            seed,
            shared,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// The seed this schedule runs with (`NSTEST_SEED`'s when it is set).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The events applied so far, in order, one line each, as `+150ms partition [a] |
    /// [b c]`, `+300ms delay a <-> c 12.5ms`, `+450ms loss b <-> c 7.5%`, `+600ms block c ->
    /// a` or `+750ms heal` (the time is the schedule's: tick times, not measured ones).
    pub fn events(&self) -> Vec<String> {
        self.shared.lock().events.clone()
    }

    /// Stops the schedule and heals its fault; the network is whole again when it
    /// returns. Later calls do nothing.
    ///
    /// # Panics
    ///
    /// When the kernel refused one of the schedule's faults, or healing it (the message
    /// names the call).
    pub fn stop(&self) {
        if let Some(message) = self.finish() {
            panic!("{message}");
        }
    }

    /// Stops the thread and waits for it; returns the error that ended the schedule, if
    /// any, once.
    fn finish(&self) -> Option<String> {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_all();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.shared.lock().failed.take()
    }
}

impl Drop for ChaosGuard {
    fn drop(&mut self) {
        if let Some(message) = self.finish() {
            super::error::panic_unless_unwinding(&message);
        }
    }
}

impl fmt::Debug for ChaosGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosGuard")
            .field("seed", &self.seed)
            .field("events", &self.shared.lock().events.len())
            .finish()
    }
}

/// The schedule's thread.
struct Schedule {
    lan: Arc<Lan>,
    kinds: Vec<Kind>,
    every: Duration,
    rng: Rng,
    shared: Arc<Shared>,
}

impl Schedule {
    fn run(mut self) {
        let started = Instant::now();
        let mut in_force: Option<u64> = None;
        for tick in 1u32.. {
            let at = self.every.saturating_mul(tick);
            if !self.wait_until(started + at) {
                break;
            }
            if let Err(message) = self.tick(at, &mut in_force) {
                self.shared.lock().failed = Some(message);
                break;
            }
        }
        if let Some(id) = in_force {
            if let Err(e) = self.lan.heal(id) {
                self.shared.lock().failed = Some(e.explain("healing a chaos fault"));
            }
        }
    }

    /// Waits for `deadline`; `false` once the guard asks the schedule to stop.
    fn wait_until(&self, deadline: Instant) -> bool {
        let mut state = self.shared.lock();
        loop {
            if state.stopping {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Heals the fault in force and applies the next one drawn.
    fn tick(&mut self, at: Duration, in_force: &mut Option<u64>) -> Result<(), String> {
        let names: Vec<String> = self.lan.lock().host_names().map(str::to_owned).collect();
        let event = chaos::draw(&mut self.rng, &self.kinds, names.len());
        let healed = in_force.take();
        if let Some(id) = healed {
            self.lan
                .heal(id)
                .map_err(|e| e.explain("healing a chaos fault"))?;
        }
        let Some(event) = event else {
            if healed.is_some() {
                self.shared
                    .lock()
                    .events
                    .push(chaos::describe(at, None, &names));
            }
            return Ok(());
        };
        let line = chaos::describe(at, Some(&event), &names);
        let added = match &event {
            Event::Partition { side_a, side_b } => {
                let drops = Direction::between(side_a, side_b);
                self.lan.add_fault(drops, Vec::new(), None)
            }
            Event::Block(d) => self.lan.add_fault(vec![*d], Vec::new(), None),
            Event::Shape { pair, shape } => {
                self.lan
                    .add_fault(Vec::new(), vec![*pair, pair.reverse()], Some(*shape))
            }
        };
        let id = added.map_err(|e| e.explain(&format!("applying chaos event `{line}`")))?;
        *in_force = Some(id);
        self.shared.lock().events.push(line);
        Ok(())
    }
}
