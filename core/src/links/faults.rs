//! What a bad link does to a packet: loss, delay, jitter, a rate limit with a
//! bounded queue, and outages (scripted or switched by hand).
//!
//! Pure logic, no I/O: [`Pipe::admit`] takes the time and a random draw and says
//! when the packet arrives or why it is dropped, so the behaviour is tested
//! exactly, without timing. The in-process [`super::Medium`] applies it to iroh's
//! packets. This kernel has no netem, and the tests need loss and outages they
//! can script; a few lines here do that (no crate offers a packet-fate model
//! that plugs under an iroh custom transport).

use std::time::Duration;

/// A time window, counted from when the link was created, during which the
/// link carries nothing ("drop everything from t=5 s to t=12 s").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// Start of the outage, from the link's creation.
    pub from: Duration,
    /// End of the outage (exclusive).
    pub until: Duration,
}

/// How a link misbehaves. The default is a perfect link: no loss, no delay,
/// unlimited rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Probability in `[0, 1]` that a packet is lost.
    pub loss: f64,
    /// One-way delay added to every packet.
    pub delay: Duration,
    /// Extra one-way delay drawn uniformly from `[0, jitter]` per packet
    /// (packets may then arrive out of order, as on a real radio link).
    pub jitter: Duration,
    /// Rate limit in bytes per second; `None` for unlimited.
    pub rate: Option<u64>,
    /// Bytes that may wait for the rate limit: a packet that finds more than
    /// this already waiting ahead of it is dropped (tail drop, like a router's
    /// buffer).
    pub queue_bytes: usize,
    /// Scripted outages.
    pub outages: Vec<Outage>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate: None,
            queue_bytes: 64 * 1024,
            outages: Vec::new(),
        }
    }
}

impl Faults {
    /// A link with this much one-way delay.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    /// A link that loses this share of packets (clamped to `[0, 1]`).
    pub fn loss(mut self, p: f64) -> Self {
        self.loss = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self
    }
    /// A link with this much jitter on top of its delay.
    pub fn jitter(mut self, j: Duration) -> Self {
        self.jitter = j;
        self
    }
    /// A link limited to `bytes_per_sec` (at least 1) with a queue of `queue_bytes`.
    pub fn rate(mut self, bytes_per_sec: u64, queue_bytes: usize) -> Self {
        self.rate = Some(bytes_per_sec.max(1));
        self.queue_bytes = queue_bytes;
        self
    }
    /// Adds a scripted outage.
    pub fn outage(mut self, from: Duration, until: Duration) -> Self {
        self.outages.push(Outage { from, until });
        self
    }
}

/// Why a packet did not cross the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// The link was down (scripted outage or switched off).
    Down,
    /// Random loss.
    Lost,
    /// The rate limit's queue was full.
    QueueFull,
}

/// What happens to one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrives this long after the link's creation.
    Arrives(Duration),
    /// It is dropped.
    Dropped(Drop),
}

/// One direction of a link: the faults plus the state of its rate limiter.
#[derive(Debug)]
pub(crate) struct Pipe {
    faults: Faults,
    up: bool,
    /// When the last queued byte has left (the rate limiter's clock).
    free_at: Duration,
}

impl Pipe {
    pub(crate) fn new(faults: Faults) -> Self {
        Pipe {
            faults,
            up: true,
            free_at: Duration::ZERO,
        }
    }

    pub(crate) fn set_up(&mut self, up: bool) {
        self.up = up;
    }

    pub(crate) fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// Whether the link carries packets at `now`.
    pub(crate) fn is_up(&self, now: Duration) -> bool {
        self.up
            && !self
                .faults
                .outages
                .iter()
                .any(|o| o.from <= now && now < o.until)
    }

    /// Decides the fate of a packet of `len` bytes sent at `now` (time since the
    /// link was created); `draw_loss` and `draw_jitter` are uniform in `[0, 1)`.
    pub(crate) fn admit(
        &mut self,
        now: Duration,
        len: usize,
        draw_loss: f64,
        draw_jitter: f64,
    ) -> Fate {
        if !self.is_up(now) {
            return Fate::Dropped(Drop::Down);
        }
        // The rate limiter: the packet leaves once those queued before it have.
        let departs = if let Some(rate) = self.faults.rate {
            let start = self.free_at.max(now);
            let backlog = start - now;
            let queued = backlog.as_secs_f64() * rate as f64;
            // (Half a byte of slack for the float round trip through Duration.)
            if queued > self.faults.queue_bytes as f64 + 0.5 {
                return Fate::Dropped(Drop::QueueFull);
            }
            let on_wire = Duration::from_secs_f64(len as f64 / rate as f64);
            self.free_at = start + on_wire;
            self.free_at
        } else {
            now
        };
        // Loss after queueing: a lost packet still used the link's time.
        if draw_loss < self.faults.loss {
            return Fate::Dropped(Drop::Lost);
        }
        let jitter = self.faults.jitter.mul_f64(draw_jitter.clamp(0.0, 1.0));
        Fate::Arrives(departs + self.faults.delay + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_perfect_link_delivers_at_once() {
        let mut p = Pipe::new(Faults::default());
        assert_eq!(p.admit(5 * MS, 1200, 0.0, 0.5), Fate::Arrives(5 * MS));
    }

    #[test]
    fn delay_and_jitter_add_up() {
        let mut p = Pipe::new(Faults::default().delay(150 * MS).jitter(20 * MS));
        assert_eq!(
            p.admit(Duration::ZERO, 100, 0.9, 0.5),
            Fate::Arrives(160 * MS)
        );
        assert_eq!(
            p.admit(Duration::ZERO, 100, 0.9, 0.0),
            Fate::Arrives(150 * MS)
        );
    }

    #[test]
    fn loss_drops_the_drawn_share() {
        let mut p = Pipe::new(Faults::default().loss(0.2));
        assert_eq!(p.admit(MS, 10, 0.19, 0.0), Fate::Dropped(Drop::Lost));
        assert_eq!(p.admit(MS, 10, 0.2, 0.0), Fate::Arrives(MS));
    }

    #[test]
    fn the_rate_spaces_packets_and_the_queue_bounds_them() {
        // 1,200 B/s: a 1,200 B packet takes one second on the wire.
        let mut p = Pipe::new(Faults::default().rate(1200, 2400));
        let s = Duration::from_secs(1);
        assert_eq!(p.admit(Duration::ZERO, 1200, 0.9, 0.0), Fate::Arrives(s));
        assert_eq!(
            p.admit(Duration::ZERO, 1200, 0.9, 0.0),
            Fate::Arrives(2 * s)
        );
        assert_eq!(
            p.admit(Duration::ZERO, 1200, 0.9, 0.0),
            Fate::Arrives(3 * s)
        );
        // 3,600 B now wait (more than the 2,400 B queue): tail drop.
        assert_eq!(
            p.admit(Duration::ZERO, 1200, 0.9, 0.0),
            Fate::Dropped(Drop::QueueFull)
        );
        // Once the queue drains, packets flow again.
        assert_eq!(p.admit(3 * s, 1200, 0.9, 0.0), Fate::Arrives(4 * s));
    }

    #[test]
    fn outages_follow_the_script_and_the_switch() {
        let mut p =
            Pipe::new(Faults::default().outage(Duration::from_secs(5), Duration::from_secs(12)));
        let at = |s| Duration::from_secs(s);
        assert!(matches!(p.admit(at(4), 10, 0.9, 0.0), Fate::Arrives(_)));
        assert_eq!(p.admit(at(5), 10, 0.9, 0.0), Fate::Dropped(Drop::Down));
        assert_eq!(p.admit(at(11), 10, 0.9, 0.0), Fate::Dropped(Drop::Down));
        assert!(matches!(p.admit(at(12), 10, 0.9, 0.0), Fate::Arrives(_)));
        p.set_up(false);
        assert_eq!(p.admit(at(13), 10, 0.9, 0.0), Fate::Dropped(Drop::Down));
        p.set_up(true);
        assert!(matches!(p.admit(at(14), 10, 0.9, 0.0), Fate::Arrives(_)));
    }

    proptest! {
        /// Whatever is sent, nothing arrives before it was sent plus the delay,
        /// the bytes accepted never exceed what the rate allows plus the queue,
        /// and loss never exceeds what was drawn.
        #[test]
        fn the_rate_bound_holds(
            sends in proptest::collection::vec((0u64..5_000, 1usize..1500, 0f64..1.0), 1..200),
            rate in 100u64..100_000,
            queue in 0usize..20_000,
        ) {
            let mut p = Pipe::new(Faults::default().rate(rate, queue).delay(MS));
            let mut now = Duration::ZERO;
            let mut accepted = 0usize;
            for (gap_ms, len, jit) in sends {
                now += Duration::from_millis(gap_ms);
                match p.admit(now, len, 0.99, jit) {
                    Fate::Arrives(at) => {
                        prop_assert!(at >= now + MS);
                        accepted += len;
                    }
                    Fate::Dropped(d) => prop_assert_eq!(d, Drop::QueueFull),
                }
                // Bytes accepted so far fit in the time elapsed at the rate,
                // plus the queue, plus one packet.
                let budget = (now.as_secs_f64() + 0.001) * rate as f64 + (queue + 1500) as f64;
                prop_assert!((accepted as f64) <= budget + 1500.0);
            }
        }
    }
}
