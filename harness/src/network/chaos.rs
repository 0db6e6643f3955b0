//! Seeded chaos, as data: [`Chaos`] (what faults a schedule may draw, how often, from
//! which seed), the draw of each tick's event and its line. Used in the test process by the
//! schedule's thread (see `schedule`), which applies the events through the switch.
//!
//! The schedule is a pure function of the seed and of the hosts present at each tick: tick
//! `k` (at `k * every` after the start) heals the fault of tick `k - 1` and draws the next
//! one with a splitmix64 generator (see `rng`): one of the enabled kinds, or a calm period,
//! each equally likely. So the same seed gives the same events in the same order, and the
//! same lines from [`ChaosGuard::events`], whose times are the schedule's, not measured.

use std::ops::Range;
use std::time::Duration;

use super::Shape;
use super::rng::Rng;
use super::switch::Direction;

/// The environment variable whose value, a decimal `u64`, replaces every seed.
pub(super) const SEED_VARIABLE: &str = "NSTEST_SEED";
/// The period between events when [`Chaos::every`] is not called.
const DEFAULT_EVERY: Duration = Duration::from_millis(500);

/// A schedule of random faults for [`Network::chaos`](super::Network::chaos): which kinds it
/// may draw, how often, and from which seed.
///
/// ```no_run
/// # use std::time::Duration;
/// # use nstest::{ns_test, Chaos, Network};
/// #[ns_test(net)]
/// fn survives_chaos() {
///     let net = Network::new();
///     let (a, b, c) = (net.host("a"), net.host("b"), net.host("c"));
///     let chaos = net.chaos(
///         Chaos::new()
///             .partitions()
///             .delays(Duration::from_millis(5)..Duration::from_millis(50))
///             .loss(0.2)
///             .every(Duration::from_millis(200))
///             .seed(424242),
///     );
///     // ... run the cluster on a, b and c, check what it promises ...
///     println!("{:#?}", chaos.events());
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a Chaos does nothing until given to Network::chaos"]
pub struct Chaos {
    partitions: bool,
    blocks: bool,
    delays: Option<Range<Duration>>,
    loss: Option<f64>,
    every: Duration,
    seed: Option<u64>,
}

impl Default for Chaos {
    fn default() -> Chaos {
        Chaos::new()
    }
}

impl Chaos {
    /// A schedule with no kind of fault yet, one event every 500 ms, and a random seed.
    pub fn new() -> Chaos {
        Chaos {
            partitions: false,
            blocks: false,
            delays: None,
            loss: None,
            every: DEFAULT_EVERY,
            seed: None,
        }
    }

    /// Draws partitions: a random split of the hosts into two sides, neither empty, with
    /// every IP packet between the sides dropped (as [`Network::partition`]).
    ///
    /// [`Network::partition`]: super::Network::partition
    pub fn partitions(mut self) -> Chaos {
        self.partitions = true;
        self
    }

    /// Draws one-way blocks: every IP packet from one random host to another is dropped,
    /// the other way still works (as [`Network::block`](super::Network::block)).
    pub fn blocks(mut self) -> Chaos {
        self.blocks = true;
        self
    }

    /// Draws delays: a random pair of hosts gets a latency drawn uniformly from `range`
    /// added to every packet, both ways (as a [`Shape`] with that `delay`).
    pub fn delays(mut self, range: Range<Duration>) -> Chaos {
        self.delays = Some(range);
        self
    }

    /// Draws losses: a random pair of hosts loses packets, both ways, with a probability
    /// drawn uniformly up to `max` (`0.0..=1.0`).
    pub fn loss(mut self, max: f64) -> Chaos {
        self.loss = Some(max);
        self
    }

    /// The period between events; each fault lasts one period.
    pub fn every(mut self, period: Duration) -> Chaos {
        self.every = period;
        self
    }

    /// The seed the schedule is drawn from. `NSTEST_SEED=<n>` in the environment replaces
    /// it; with neither, a seed is drawn at random. Either way the guard says which one
    /// ran, and a failing test names it with the command that replays it.
    pub fn seed(mut self, seed: u64) -> Chaos {
        self.seed = Some(seed);
        self
    }

    /// The seed given in code, if any.
    pub(super) fn seed_given(&self) -> Option<u64> {
        self.seed
    }

    /// The period between events.
    pub(super) fn period(&self) -> Duration {
        self.every
    }

    /// The kinds enabled, in a fixed order (the draw's index depends on it).
    pub(super) fn kinds(&self) -> Vec<Kind> {
        let mut kinds = Vec::new();
        if self.partitions {
            kinds.push(Kind::Partition);
        }
        if self.blocks {
            kinds.push(Kind::Block);
        }
        if let Some(range) = &self.delays {
            kinds.push(Kind::Delay(range.clone()));
        }
        if let Some(max) = self.loss {
            kinds.push(Kind::Loss(max));
        }
        kinds
    }

    /// Panics on a schedule that cannot run, naming what to change.
    pub(super) fn check(&self) {
        if self.kinds().is_empty() {
            panic!(
                "nstest network: this Chaos draws no kind of fault: add .partitions(), \
                 .blocks(), .delays(range) or .loss(max)"
            );
        }
        if self.every.is_zero() {
            panic!("nstest network: Chaos::every needs a period above zero");
        }
        if let Some(max) = self.loss {
            if !(0.0..=1.0).contains(&max) {
                panic!("nstest network: Chaos::loss is a probability, 0.0 to 1.0, not {max}");
            }
        }
        if let Some(range) = &self.delays {
            if range.end < range.start {
                panic!(
                    "nstest network: Chaos::delays({:?}..{:?}) ends before it starts",
                    range.start, range.end
                );
            }
        }
    }
}

/// What a tick may draw.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Partition,
    Block,
    Delay(Range<Duration>),
    Loss(f64),
}

/// One drawn fault, by host number, ready to apply and to print.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Event {
    Partition {
        side_a: Vec<usize>,
        side_b: Vec<usize>,
    },
    Block(Direction),
    Shape {
        pair: Direction,
        shape: Shape,
    },
}

/// Draws the event of one tick over `hosts` hosts; `None` for a calm period (or fewer
/// than two hosts). Every call draws from `rng` the same way for the same host count.
pub(super) fn draw(rng: &mut Rng, kinds: &[Kind], hosts: usize) -> Option<Event> {
    let pick = rng.below(kinds.len() + 1);
    let kind = kinds.get(pick)?;
    if hosts < 2 {
        return None;
    }
    let pair = |rng: &mut Rng| {
        let from = rng.below(hosts);
        let mut to = rng.below(hosts - 1);
        if to >= from {
            to += 1;
        }
        Direction { from, to }
    };
    Some(match kind {
        Kind::Partition => {
            let mut sides: Vec<bool> = (0..hosts).map(|_| rng.next_u64() & 1 == 1).collect();
            if sides.iter().all(|&s| s == sides[0]) {
                let moved = rng.below(hosts);
                sides[moved] = !sides[moved];
            }
            let (side_a, side_b) = (0..hosts).partition(|&h| sides[h] == sides[0]);
            Event::Partition { side_a, side_b }
        }
        Kind::Block => Event::Block(pair(rng)),
        Kind::Delay(range) => {
            let span = range.end.saturating_sub(range.start);
            // Whole microseconds, so that a printed delay is the one applied.
            let micros = (span.as_micros() as f64 * rng.unit()) as u64;
            let delay = range.start + Duration::from_micros(micros);
            let pair = ordered(pair(rng));
            Event::Shape {
                pair,
                shape: Shape {
                    delay,
                    ..Shape::default()
                },
            }
        }
        Kind::Loss(max) => {
            // Up to `max`, never zero, in steps of 0.1%.
            let loss = ((max * (1.0 - rng.unit()) * 1000.0).ceil() / 1000.0).min(*max);
            let pair = ordered(pair(rng));
            Event::Shape {
                pair,
                shape: Shape {
                    loss,
                    ..Shape::default()
                },
            }
        }
    })
}

/// A pair with its lower host number first, as it is printed.
fn ordered(d: Direction) -> Direction {
    if d.from < d.to { d } else { d.reverse() }
}

/// The line of an event at schedule time `at`, with host names.
pub(super) fn describe(at: Duration, event: Option<&Event>, names: &[String]) -> String {
    let list = |hosts: &[usize]| {
        let names: Vec<&str> = hosts.iter().map(|&h| names[h].as_str()).collect();
        names.join(" ")
    };
    let what = match event {
        None => "heal".to_owned(),
        Some(Event::Partition { side_a, side_b }) => {
            format!("partition [{}] | [{}]", list(side_a), list(side_b))
        }
        Some(Event::Block(d)) => format!("block {} -> {}", names[d.from], names[d.to]),
        Some(Event::Shape { pair, shape }) if shape.loss > 0.0 => format!(
            "loss {} <-> {} {}%",
            names[pair.from],
            names[pair.to],
            (shape.loss * 1000.0).round() / 10.0
        ),
        Some(Event::Shape { pair, shape }) => format!(
            "delay {} <-> {} {}",
            names[pair.from],
            names[pair.to],
            format_duration(shape.delay)
        ),
    };
    format!("+{} {what}", format_duration(at))
}

/// A schedule time or a delay in milliseconds, as written: `150ms`, `2000ms`, `12.5ms`
/// (one unit, so that the lines of a schedule read and sort alike).
fn format_duration(d: Duration) -> String {
    if d.as_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ms", d.as_micros() as f64 / 1000.0)
    }
}

/// The seed a schedule runs with: `NSTEST_SEED`, else the one given, else a random one.
///
/// # Panics
///
/// When `NSTEST_SEED` is set but not a decimal `u64`.
pub(super) fn choose_seed(given: Option<u64>) -> u64 {
    match std::env::var(SEED_VARIABLE) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            panic!(
                "nstest network: {SEED_VARIABLE}={text:?} is not a seed: give a decimal \
                 number from 0 to {}, as a failing test's replay line prints it",
                u64::MAX
            )
        }),
        Err(_) => given.unwrap_or_else(Rng::random_seed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chaos: &Chaos, seed: u64, ticks: u32, hosts: usize) -> Vec<String> {
        let names: Vec<String> = (0..hosts).map(|h| format!("h{h}")).collect();
        let mut rng = Rng::new(seed);
        (1..=ticks)
            .map(|k| {
                let event = draw(&mut rng, &chaos.kinds(), hosts);
                describe(chaos.every * k, event.as_ref(), &names)
            })
            .collect()
    }

    fn everything() -> Chaos {
        Chaos::new()
            .partitions()
            .blocks()
            .delays(Duration::from_millis(5)..Duration::from_millis(50))
            .loss(0.3)
            .every(Duration::from_millis(150))
    }

    #[test]
    fn the_same_seed_draws_the_same_events_and_another_seed_others() {
        let chaos = everything();
        let first = lines(&chaos, 424_242, 40, 4);
        assert_eq!(first, lines(&chaos, 424_242, 40, 4));
        assert_ne!(first, lines(&chaos, 424_243, 40, 4));
        assert!(first[0].starts_with("+150ms "), "{first:?}");
        assert!(first[1].starts_with("+300ms "), "{first:?}");
        for kind in ["partition [", "block ", "delay ", "loss ", "heal"] {
            assert!(
                first.iter().any(|l| l.contains(kind)),
                "no {kind:?} in {first:#?}"
            );
        }
    }

    #[test]
    fn drawn_faults_stay_within_what_the_schedule_allows() {
        let chaos = everything();
        let mut rng = Rng::new(7);
        for _ in 0..2_000 {
            match draw(&mut rng, &chaos.kinds(), 3) {
                Some(Event::Partition { side_a, side_b }) => {
                    assert!(!side_a.is_empty() && !side_b.is_empty());
                    assert_eq!(side_a.len() + side_b.len(), 3);
                    assert_eq!(side_a[0], 0, "the first host's side is listed first");
                }
                Some(Event::Block(d)) => assert!(d.from != d.to && d.from < 3 && d.to < 3),
                Some(Event::Shape { pair, shape }) => {
                    assert!(pair.from < pair.to && pair.to < 3);
                    assert!(shape.loss <= 0.3);
                    let delayed = shape.delay >= Duration::from_millis(5)
                        && shape.delay < Duration::from_millis(50);
                    assert!(shape.loss > 0.0 || delayed, "{shape:?}");
                }
                None => {}
            }
        }
        // One host: nothing to cut, every tick calm.
        assert!(lines(&chaos, 1, 20, 1).iter().all(|l| l.ends_with(" heal")));
    }

    #[test]
    fn a_line_reads_as_the_contract_shows() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let partition = Event::Partition {
            side_a: vec![0],
            side_b: vec![1, 2],
        };
        assert_eq!(
            describe(Duration::from_millis(150), Some(&partition), &names),
            "+150ms partition [a] | [b c]"
        );
        let loss = Event::Shape {
            pair: Direction { from: 0, to: 2 },
            shape: Shape {
                loss: 0.125,
                ..Shape::default()
            },
        };
        assert_eq!(
            describe(Duration::from_secs(2), Some(&loss), &names),
            "+2000ms loss a <-> c 12.5%"
        );
    }

    #[test]
    fn the_environment_seed_wins() {
        // The variable is read only here in this crate's unit tests.
        assert_eq!(choose_seed(Some(5)), 5);
    }
}
