//! PACE (Primary, Alternate, Contingency, Emergency): which link carries a
//! peer's traffic, from each link's measured health.
//!
//! Pure logic: times are passed in, so every rule is tested exactly. The bond
//! ([`super::bond`]) feeds it probe results and asks it for a link per peer.
//!
//! Rules:
//! - A link is [`LinkState::Healthy`], `Degraded` (answering, but its loss or
//!   smoothed RTT is past the policy's threshold), `Suspect` (no answer yet,
//!   or a missed one) or `Dead` (no answer for [`PacePolicy::dead_after`]).
//! - The link in use is left at once when it is dead, or degraded while a
//!   healthy one exists: for the best level with a healthy link, else the
//!   best with a degraded one.
//! - A better level is taken back only after one of its links has stayed
//!   healthy for [`PacePolicy::hold_down`], so a flapping link never
//!   attracts traffic.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How links are ranked and judged. Levels are lists of link names, best
/// first (primary, alternate, contingency, emergency — any number of levels).
#[derive(Clone, Debug, PartialEq)]
pub struct PacePolicy {
    /// Link names per level, best level first. Links not named are not used.
    /// Empty: every link is its own level, in the order configured.
    pub levels: Vec<Vec<String>>,
    /// How often each link to each peer is probed. Default 500 ms.
    pub probe_interval: Duration,
    /// A link that has answered no probe for this long is dead. Default 2 s
    /// (failover then takes at most this plus one probe interval).
    pub dead_after: Duration,
    /// Smoothed RTT past which a link is degraded. Default 2 s.
    pub degraded_rtt: Duration,
    /// Probe loss past which a link is degraded. Default 0.25.
    pub degraded_loss: f64,
    /// How long a better level must stay healthy before traffic goes back to
    /// it. Default 10 s.
    pub hold_down: Duration,
    /// Bulk transfers (blobs) only over links of this level or better (0 is
    /// primary). `None` (the default): any level. A fetch whose provider is
    /// reachable only over a worse level waits for a better one (up to its
    /// reconnect wait); a node sends no blob bytes over a worse one.
    pub bulk_max_level: Option<usize>,
    /// Per-collection rules: documents of collection `name` go to a peer only
    /// while the link carrying its traffic is at `level` or better (e.g.
    /// imagery never over the emergency radio). The other collections still
    /// sync; what was held back goes once a good enough link carries the peer
    /// again (a reconciliation round starts then). Default: none.
    pub collection_max_level: Vec<(String, usize)>,
}

impl Default for PacePolicy {
    fn default() -> Self {
        PacePolicy {
            levels: Vec::new(),
            probe_interval: Duration::from_millis(500),
            dead_after: Duration::from_secs(2),
            degraded_rtt: Duration::from_secs(2),
            degraded_loss: 0.25,
            hold_down: Duration::from_secs(10),
            bulk_max_level: None,
            collection_max_level: Vec::new(),
        }
    }
}

/// PACE levels a policy may name: primary, alternate, contingency,
/// emergency and a few more.
pub const MAX_LEVELS: usize = 8;

impl PacePolicy {
    /// The [`PacePolicy::levels`] of links given as (name, level) pairs:
    /// links of one level in the order given. `InvalidArgument` for a level
    /// of [`MAX_LEVELS`] or more.
    pub fn levels_of<'a>(
        links: impl IntoIterator<Item = (&'a str, usize)>,
    ) -> crate::Result<Vec<Vec<String>>> {
        let mut levels: Vec<Vec<String>> = Vec::new();
        for (name, level) in links {
            if level >= MAX_LEVELS {
                return Err(crate::Error::InvalidArgument(format!(
                    "link {name:?} level {level} (levels 0–{})",
                    MAX_LEVELS - 1
                )));
            }
            if levels.len() <= level {
                levels.resize(level + 1, Vec::new());
            }
            levels[level].push(name.to_string());
        }
        Ok(levels)
    }

    /// The level of the link `name` (0 is primary), `None` if not listed.
    pub(crate) fn level_of(&self, name: &str, position: usize) -> Option<usize> {
        if self.levels.is_empty() {
            return Some(position);
        }
        self.levels.iter().position(|l| l.iter().any(|n| n == name))
    }
}

/// A link's health as measured by its probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkState {
    /// Answering within the policy's thresholds.
    Healthy,
    /// Answering, but lossy or slow past the thresholds.
    Degraded,
    /// Not proven yet, or missed its last answer.
    Suspect,
    /// No answer for the policy's dead time.
    Dead,
}

/// Probes remembered per link for the loss estimate.
const PROBE_WINDOW: usize = 16;

/// One link to one peer: probes sent, answers, smoothed RTT (RFC 6298 gains).
#[derive(Debug)]
pub(crate) struct Health {
    created: Instant,
    srtt: Option<Duration>,
    rttvar: Duration,
    last_answer: Option<Instant>,
    /// Recent probes: (seq, nonce, sent at, answered).
    probes: VecDeque<(u32, u64, Instant, bool)>,
    healthy_since: Option<Instant>,
    /// Judged dead last time: the first answer after that starts a fresh
    /// loss window (a dead spell is not loss of a live link).
    was_dead: bool,
}

/// Settled probes needed before loss can degrade a link.
const MIN_LOSS_SAMPLES: u32 = 4;

impl Health {
    pub(crate) fn new(now: Instant) -> Self {
        Health {
            created: now,
            srtt: None,
            rttvar: Duration::ZERO,
            last_answer: None,
            probes: VecDeque::with_capacity(PROBE_WINDOW),
            healthy_since: None,
            was_dead: false,
        }
    }

    pub(crate) fn probe_sent(&mut self, seq: u32, nonce: u64, now: Instant) {
        if self.probes.len() == PROBE_WINDOW {
            self.probes.pop_front();
        }
        self.probes.push_back((seq, nonce, now, false));
    }

    /// An echo of probe `seq` carrying `nonce` arrived: the RTT is measured
    /// on this node's clock from when the probe left. An echo of a probe this
    /// link never sent, already answered, or with another nonce (a guess by
    /// someone who did not see the probe) is ignored.
    pub(crate) fn answered(&mut self, seq: u32, nonce: u64, now: Instant) {
        let Some(p) = self
            .probes
            .iter_mut()
            .find(|p| p.0 == seq && p.1 == nonce && !p.3)
        else {
            return;
        };
        p.3 = true;
        let rtt = now.duration_since(p.2);
        if std::mem::take(&mut self.was_dead) {
            self.probes.retain(|p| p.0 == seq);
        }
        self.last_answer = Some(now);
        self.srtt = Some(match self.srtt {
            None => {
                self.rttvar = rtt / 2;
                rtt
            }
            Some(s) => {
                let diff = s.abs_diff(rtt);
                self.rttvar = self.rttvar.mul_f64(0.75) + diff.mul_f64(0.25);
                s.mul_f64(0.875) + rtt.mul_f64(0.125)
            }
        });
    }

    /// Smoothed RTT, once measured.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The RTT's smoothed mean deviation, once measured.
    pub(crate) fn rttvar(&self) -> Option<Duration> {
        self.srtt.map(|_| self.rttvar)
    }

    /// Time since the last answer, if any.
    pub(crate) fn since_answer(&self, now: Instant) -> Option<Duration> {
        self.last_answer.map(|t| now.duration_since(t))
    }

    /// Time after which an unanswered probe counts as lost.
    fn settle(&self, policy: &PacePolicy) -> Duration {
        match self.srtt {
            Some(s) => {
                (s * 2 + self.rttvar * 4).clamp(Duration::from_millis(50), policy.dead_after)
            }
            None => policy.dead_after,
        }
    }

    /// Share of settled recent probes that went unanswered.
    pub(crate) fn loss(&self, now: Instant, policy: &PacePolicy) -> f64 {
        let (n, lost) = self.settled(now, policy);
        if n == 0 {
            0.0
        } else {
            f64::from(lost) / f64::from(n)
        }
    }

    /// Settled recent probes and how many of them went unanswered.
    fn settled(&self, now: Instant, policy: &PacePolicy) -> (u32, u32) {
        let settle = self.settle(policy);
        let (mut n, mut lost) = (0u32, 0u32);
        for &(_, _, at, answered) in &self.probes {
            if answered || now.duration_since(at) >= settle {
                n += 1;
                if !answered {
                    lost += 1;
                }
            }
        }
        (n, lost)
    }

    /// Judges the link at `now` and keeps track of how long it has been healthy.
    pub(crate) fn state(&mut self, now: Instant, policy: &PacePolicy) -> LinkState {
        let s = self.judge(now, policy);
        self.was_dead = s == LinkState::Dead;
        if s == LinkState::Healthy {
            self.healthy_since.get_or_insert(now);
        } else {
            self.healthy_since = None;
        }
        s
    }

    fn judge(&self, now: Instant, policy: &PacePolicy) -> LinkState {
        let silent_since = self.last_answer.unwrap_or(self.created);
        if now.duration_since(silent_since) >= policy.dead_after {
            return LinkState::Dead;
        }
        let Some(srtt) = self.srtt else {
            return LinkState::Suspect;
        };
        // A probe older than the settle time still unanswered: suspect.
        let settle = self.settle(policy);
        let missed = self
            .probes
            .back()
            .is_some_and(|&(_, _, at, answered)| !answered && now.duration_since(at) >= settle);
        let (n, lost) = self.settled(now, policy);
        let lossy = n >= MIN_LOSS_SAMPLES && f64::from(lost) > policy.degraded_loss * f64::from(n);
        if lossy || srtt > policy.degraded_rtt {
            LinkState::Degraded
        } else if missed {
            LinkState::Suspect
        } else {
            LinkState::Healthy
        }
    }

    /// How long the link has been healthy without a break (as of the last
    /// [`Health::state`] call).
    pub(crate) fn healthy_for(&self, now: Instant) -> Duration {
        self.healthy_since
            .map(|s| now.duration_since(s))
            .unwrap_or(Duration::ZERO)
    }
}

/// A candidate link as PACE sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    /// The link's level (0 is primary).
    pub level: usize,
    pub state: LinkState,
    /// How long it has been healthy without a break.
    pub healthy_for: Duration,
}

/// Which candidate carries the traffic, given the one in use (`current`, an
/// index into `links`). Returns the index to use, or `None` if no link is
/// worth trying.
pub(crate) fn choose(
    current: Option<usize>,
    links: &[Candidate],
    policy: &PacePolicy,
) -> Option<usize> {
    // Best (lowest level) link in a given state; ties go to the earlier link.
    let best = |want: LinkState| {
        links
            .iter()
            .enumerate()
            .filter(|(_, c)| c.state == want)
            .min_by_key(|(i, c)| (c.level, *i))
            .map(|(i, _)| i)
    };
    let healthy = best(LinkState::Healthy);
    let Some(cur) = current.filter(|&i| i < links.len()) else {
        // Nothing in use yet: the best proven link, else the best not known dead.
        return healthy
            .or_else(|| best(LinkState::Degraded))
            .or_else(|| best(LinkState::Suspect));
    };
    let c = links[cur];
    match c.state {
        LinkState::Dead => healthy
            .or_else(|| best(LinkState::Degraded))
            .or_else(|| best(LinkState::Suspect))
            .or(Some(cur)),
        LinkState::Degraded => Some(healthy.unwrap_or(cur)),
        // One missed answer is not a reason to move (and not a reason to
        // move back to a better level either).
        LinkState::Suspect => Some(cur),
        LinkState::Healthy => {
            // Back to a better level only after its hold-down.
            let better = links
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    l.level < c.level
                        && l.state == LinkState::Healthy
                        && l.healthy_for >= policy.hold_down
                })
                .min_by_key(|(i, l)| (l.level, *i))
                .map(|(i, _)| i);
            Some(better.unwrap_or(cur))
        }
    }
}

#[cfg(test)]
#[path = "pace_tests.rs"]
mod tests;
