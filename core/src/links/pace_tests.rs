use super::*;

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
const Z: Duration = Duration::ZERO;

/// The policy these tests reason in: probes every second, dead after 3 s,
/// hold-down 10 s.
fn policy() -> PacePolicy {
    PacePolicy {
        probe_interval: S,
        dead_after: 3 * S,
        hold_down: 10 * S,
        ..PacePolicy::default()
    }
}

fn cand(level: usize, state: LinkState, healthy_for: Duration) -> Candidate {
    Candidate {
        level,
        state,
        healthy_for,
    }
}

#[test]
fn rtt_is_smoothed_and_stray_echoes_are_ignored() {
    let p = policy();
    let t0 = Instant::now();
    let mut h = Health::new(t0);
    assert_eq!(h.state(t0, &p), LinkState::Suspect);
    h.probe_sent(1, 1, t0);
    h.answered(1, 1, t0 + 100 * MS);
    assert_eq!(h.srtt(), Some(100 * MS));
    // An echo of a probe never sent, sent twice, or with a guessed nonce
    // changes nothing.
    h.answered(7, 7, t0 + 200 * MS);
    h.probe_sent(3, 99, t0 + 150 * MS);
    h.answered(3, 98, t0 + 151 * MS);
    h.answered(1, 1, t0 + 200 * MS);
    assert_eq!(h.srtt(), Some(100 * MS));
    h.probe_sent(2, 2, t0 + S);
    h.answered(2, 2, t0 + S + 200 * MS);
    assert_eq!(h.srtt(), Some(Duration::from_micros(112_500)));
    assert_eq!(h.state(t0 + S + 300 * MS, &p), LinkState::Healthy);
}

#[test]
fn silence_makes_a_link_suspect_then_dead() {
    let p = policy();
    let t0 = Instant::now();
    let mut h = Health::new(t0);
    h.probe_sent(1, 1, t0);
    h.answered(1, 1, t0 + 10 * MS);
    h.probe_sent(2, 2, t0 + S);
    assert_eq!(h.state(t0 + S + 20 * MS, &p), LinkState::Healthy);
    // The answer to probe 2 is overdue.
    assert_eq!(h.state(t0 + S + 60 * MS, &p), LinkState::Suspect);
    assert_eq!(h.state(t0 + 3 * S + 10 * MS, &p), LinkState::Dead);
    // Never answered at all: dead after the dead time from its creation.
    let mut never = Health::new(t0);
    never.probe_sent(1, 1, t0);
    assert_eq!(never.state(t0 + 2 * S, &p), LinkState::Suspect);
    assert_eq!(never.state(t0 + 3 * S, &p), LinkState::Dead);
}

#[test]
fn loss_and_slowness_degrade() {
    let p = policy();
    let t0 = Instant::now();
    let mut h = Health::new(t0);
    // Every other probe answered: 50 % loss.
    for i in 0..10u32 {
        let at = t0 + S * i;
        h.probe_sent(i, u64::from(i), at);
        if i % 2 == 0 {
            h.answered(i, u64::from(i), at + 20 * MS);
        }
    }
    let now = t0 + 9 * S + 500 * MS;
    assert!((h.loss(now, &p) - 0.5).abs() < 0.01, "{}", h.loss(now, &p));
    assert_eq!(h.state(now, &p), LinkState::Degraded);

    let mut slow = Health::new(t0);
    slow.probe_sent(1, 1, t0);
    slow.answered(1, 1, t0 + 2500 * MS);
    assert_eq!(slow.state(t0 + 2600 * MS, &p), LinkState::Degraded);
}

#[test]
fn choose_follows_the_rules() {
    let p = policy();
    use LinkState::*;
    // Nothing in use: the best proven link, else the best unproven one.
    let l = [cand(0, Suspect, Z), cand(1, Healthy, S)];
    assert_eq!(choose(None, &l, &p), Some(1));
    let l = [cand(0, Suspect, Z), cand(1, Suspect, Z)];
    assert_eq!(choose(None, &l, &p), Some(0));
    assert_eq!(choose(None, &[cand(0, Dead, Z)], &p), None);
    // The primary dies: the alternate at once.
    let l = [cand(0, Dead, Z), cand(1, Healthy, S)];
    assert_eq!(choose(Some(0), &l, &p), Some(1));
    // Degraded with a healthy one elsewhere (even a worse level): move.
    let l = [cand(0, Degraded, Z), cand(2, Healthy, S)];
    assert_eq!(choose(Some(0), &l, &p), Some(1));
    // Degraded and nothing better: stay.
    let l = [cand(0, Degraded, Z), cand(1, Dead, Z)];
    assert_eq!(choose(Some(0), &l, &p), Some(0));
    // Suspect (one missed answer): stay.
    let l = [cand(0, Suspect, Z), cand(1, Healthy, S * 60)];
    assert_eq!(choose(Some(0), &l, &p), Some(0));
    // Back to the primary only after the hold-down.
    let l = [cand(0, Healthy, 9 * S), cand(1, Healthy, S * 60)];
    assert_eq!(choose(Some(1), &l, &p), Some(1));
    let l = [cand(0, Healthy, 10 * S), cand(1, Healthy, S * 60)];
    assert_eq!(choose(Some(1), &l, &p), Some(0));
    // Every link dead: keep the one in use (it may come back).
    let l = [cand(0, Dead, Z), cand(1, Dead, Z)];
    assert_eq!(choose(Some(1), &l, &p), Some(1));
}

#[test]
fn levels_come_from_names_or_from_the_order() {
    let mut p = policy();
    assert_eq!(p.level_of("radio", 3), Some(3));
    p.levels = vec![vec!["wifi".into()], vec!["ble".into(), "radio".into()]];
    assert_eq!(p.level_of("wifi", 5), Some(0));
    assert_eq!(p.level_of("radio", 0), Some(1));
    assert_eq!(p.level_of("satcom", 0), None);
}

/// Two links probed every second; `up(link, second)` says whether a probe
/// sent then is answered (after 20 ms). Returns the link in use each second.
fn simulate(seconds: u32, up: impl Fn(usize, u32) -> bool) -> Vec<Option<usize>> {
    let p = policy();
    let t0 = Instant::now();
    let mut links = [Health::new(t0), Health::new(t0)];
    let mut current = None;
    let mut used = Vec::new();
    for sec in 0..seconds {
        let now = t0 + S * sec;
        for (i, h) in links.iter_mut().enumerate() {
            h.probe_sent(sec, u64::from(sec), now);
            if up(i, sec) {
                h.answered(sec, u64::from(sec), now + 20 * MS);
            }
        }
        let at = now + 500 * MS;
        let cands: Vec<Candidate> = links
            .iter_mut()
            .enumerate()
            .map(|(i, h)| {
                let state = h.state(at, &p);
                cand(i, state, h.healthy_for(at))
            })
            .collect();
        current = choose(current, &cands, &p);
        used.push(current);
    }
    used
}

#[test]
fn failover_is_bounded_and_failback_waits_for_the_hold_down() {
    // Primary dead from t=10 s to t=20 s.
    let used = simulate(60, |link, s| link == 1 || !(10..20).contains(&s));
    assert_eq!(used[9], Some(0));
    // Last answer at 9.02 s: dead at 12.02 s, seen at the 12.5 s evaluation —
    // within dead_after + one probe interval of the death.
    let first_alt = used.iter().position(|u| *u == Some(1)).unwrap();
    assert_eq!(first_alt, 12, "{used:?}");
    // Back up at 20 s, healthy from the 20.5 s evaluation: back at 30.5 s.
    let back = used
        .iter()
        .enumerate()
        .skip(first_alt)
        .find(|(_, u)| **u == Some(0))
        .map(|(i, _)| i)
        .unwrap();
    assert_eq!(back, 30, "{used:?}");
    assert!(used[back..].iter().all(|u| *u == Some(0)));
}

#[test]
fn a_flapping_primary_does_not_make_the_node_flap() {
    // Primary dies at 10 s, then flaps (up one second, down the next) to 120 s.
    let used = simulate(120, |link, s| link == 1 || s < 10 || s % 2 == 0);
    let switches = used.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches <= 1, "{switches} switches: {used:?}");
    assert_eq!(used[119], Some(1));
}
