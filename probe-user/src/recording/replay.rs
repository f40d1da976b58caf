//! Pacing of a replayed recording: events are applied when the replay clock reaches their
//! timestamp, at a speed factor, and can be paused and stepped. Live and followed sources
//! are not paced (speed None): they arrive in real time already.
use std::{
    sync::mpsc::{Receiver, TryRecvError},
    time::Instant,
};

use crate::recording::stream::{Stream, Update};

/// About this many events (or other updates) per pump, so that a view stays responsive on a
/// huge input.
const MAX_PER_PUMP: usize = 200_000;

pub struct Player {
    speed: Option<f64>,
    paused: bool,
    /// The next update, read but not yet due.
    lookahead: Option<Update>,
    /// Replay time `ts` corresponds to wall time `at`.
    anchor: Option<(u64, Instant)>,
    /// The source closed its end.
    disconnected: bool,
}

impl Player {
    /// `speed`: replay-time nanoseconds per wall nanosecond; None applies updates as they come.
    pub fn new(speed: Option<f64>) -> Player {
        Player {
            speed: speed.filter(|s| s.is_finite() && *s > 0.0),
            paused: false,
            lookahead: None,
            anchor: None,
            disconnected: false,
        }
    }

    pub fn paced(&self) -> bool {
        self.speed.is_some()
    }

    pub fn speed(&self) -> Option<f64> {
        self.speed
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    /// The source has closed and everything it sent has been applied.
    pub fn drained(&self) -> bool {
        self.disconnected && self.lookahead.is_none()
    }

    /// The replay clock (in the recording's CLOCK_MONOTONIC) at `now`; None before the first event.
    pub fn position_ns(&self, now: Instant) -> Option<u64> {
        let (ts, at) = self.anchor?;
        if self.paused || self.speed.is_none() {
            return Some(ts);
        }
        let elapsed = now.saturating_duration_since(at).as_nanos() as f64;
        Some(ts + (elapsed * self.speed.unwrap_or(1.0)) as u64)
    }

    /// Applies every update due at `now`; returns how many events (and other updates) were
    /// applied. Paced, a batch of events (a file's chunk) is applied as its events fall due:
    /// what is not due yet waits.
    pub fn pump(&mut self, rx: &Receiver<Update>, stream: &mut Stream, now: Instant) -> usize {
        let mut applied = 0;
        while applied < MAX_PER_PUMP {
            let Some(next) = self.next(rx) else { break };
            if let Some((first, _)) = event_times(&next) {
                if !self.due(first, now) {
                    self.lookahead = Some(next);
                    break;
                }
            }
            let next = match next {
                Update::Events(mut evs) if self.speed.is_some() => {
                    // Recorded in exit order: times may step back a little, so the first one
                    // not due ends what is applied now.
                    let due = evs
                        .iter()
                        .position(|e| !self.due(e.ts_ns, now))
                        .unwrap_or(evs.len());
                    if due < evs.len() {
                        self.lookahead = Some(Update::Events(evs.split_off(due)));
                    }
                    Update::Events(evs)
                }
                other => other,
            };
            applied += match &next {
                Update::Events(evs) => evs.len(),
                _ => 1,
            };
            stream.apply(next);
            if self.lookahead.is_some() {
                break;
            }
        }
        applied
    }

    /// Applies the next event (and any non-event update before it) whatever the clock says,
    /// and moves the replay clock to it. Returns whether there was one. Of a batch, paced,
    /// only its first event: the rest waits.
    pub fn step(&mut self, rx: &Receiver<Update>, stream: &mut Stream, now: Instant) -> bool {
        while let Some(next) = self.next(rx) {
            let next = match next {
                Update::Events(mut evs) if self.speed.is_some() && evs.len() > 1 => {
                    self.lookahead = Some(Update::Events(evs.split_off(1)));
                    Update::Events(evs)
                }
                other => other,
            };
            let times = event_times(&next);
            stream.apply(next);
            if let Some((_, last)) = times {
                self.anchor = Some((last, now));
                return true;
            }
        }
        false
    }

    /// Pauses or resumes; the replay clock resumes where it stopped.
    pub fn toggle_pause(&mut self, now: Instant) {
        if let Some(pos) = self.position_ns(now) {
            self.anchor = Some((pos, now));
        }
        self.paused = !self.paused;
    }

    /// Changes the speed factor, keeping the replay clock where it is.
    pub fn set_speed(&mut self, speed: f64, now: Instant) {
        if self.speed.is_none() || !(speed.is_finite() && speed > 0.0) {
            return;
        }
        if let Some(pos) = self.position_ns(now) {
            self.anchor = Some((pos, now));
        }
        self.speed = Some(speed);
    }

    fn next(&mut self, rx: &Receiver<Update>) -> Option<Update> {
        if let Some(u) = self.lookahead.take() {
            return Some(u);
        }
        match rx.try_recv() {
            Ok(u) => Some(u),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.disconnected = true;
                None
            }
        }
    }

    fn due(&mut self, ts: u64, now: Instant) -> bool {
        if self.speed.is_none() {
            return true;
        }
        if self.paused {
            return false;
        }
        // The first event starts the replay clock: a recording's quiet start is skipped.
        let (start, at) = *self.anchor.get_or_insert((ts, now));
        let elapsed = now.saturating_duration_since(at).as_nanos() as f64;
        ts <= start + (elapsed * self.speed.unwrap_or(1.0)) as u64
    }
}

/// The times of an update's first and last events: it is due at the first, and stepping to it
/// moves the replay clock to the last. Other updates carry no time and are due at once.
fn event_times(u: &Update) -> Option<(u64, u64)> {
    match u {
        Update::Event(ev) => Some((ev.ts_ns, ev.ts_ns)),
        Update::Events(evs) => Some((evs.first()?.ts_ns, evs.last()?.ts_ns)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::mpsc::sync_channel, time::Duration};

    use super::*;
    use crate::model::event::{Event, Op, ZoneId};

    fn event(ts_ns: u64) -> Event {
        Event {
            ts_ns,
            duration_ns: 1,
            tid: 1,
            op: Op::SlowPathSample {
                zone: ZoneId { node: 0, zone: 1 },
                calls: ts_ns,
            },
        }
    }

    fn ev(ts_ns: u64) -> Update {
        Update::Event(event(ts_ns))
    }

    fn feed(ts: &[u64]) -> Receiver<Update> {
        let (tx, rx) = sync_channel(16);
        for &t in ts {
            tx.send(ev(t)).unwrap();
        }
        rx
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn unpaced_applies_everything_at_once() {
        let rx = feed(&[0, 5 * S, 60 * S]);
        let (mut p, mut s) = (Player::new(None), Stream::new("t"));
        assert_eq!(p.pump(&rx, &mut s, Instant::now()), 3);
        assert!(p.drained());
    }

    #[test]
    fn paced_replay_follows_the_clock_times_speed() {
        let rx = feed(&[100 * S, 101 * S, 104 * S, 110 * S]);
        let (mut p, mut s) = (Player::new(Some(2.0)), Stream::new("t"));
        let t0 = Instant::now();
        assert_eq!(p.pump(&rx, &mut s, t0), 1, "only the first event is due at once");
        assert_eq!(
            p.pump(&rx, &mut s, t0 + Duration::from_millis(500)),
            1,
            "+1 s of replay"
        );
        assert_eq!(
            p.pump(&rx, &mut s, t0 + Duration::from_millis(1900)),
            0,
            "+3.8 s: not yet"
        );
        assert_eq!(p.pump(&rx, &mut s, t0 + Duration::from_secs(2)), 1, "+4 s");
        assert_eq!(p.position_ns(t0 + Duration::from_secs(2)), Some(104 * S));
        assert!(!p.drained());
        assert_eq!(p.pump(&rx, &mut s, t0 + Duration::from_secs(5)), 1);
    }

    #[test]
    fn a_batch_is_applied_as_its_events_fall_due_and_stepped_one_event_at_a_time() {
        let (tx, rx) = sync_channel(4);
        let batch = |ts: &[u64]| Update::Events(ts.iter().map(|&t| event(t)).collect());
        tx.send(batch(&[100 * S, 100 * S + 1, 102 * S])).unwrap();
        tx.send(batch(&[103 * S, 104 * S])).unwrap();
        let (mut p, mut s) = (Player::new(Some(1.0)), Stream::new("t"));
        let t0 = Instant::now();
        assert_eq!(p.pump(&rx, &mut s, t0), 1, "only the first event is due at once");
        assert_eq!(
            p.pump(&rx, &mut s, t0 + Duration::from_millis(1)),
            1,
            "the second"
        );
        assert_eq!(
            p.pump(&rx, &mut s, t0 + Duration::from_secs(1)),
            0,
            "+1 s: not yet"
        );
        assert_eq!(p.pump(&rx, &mut s, t0 + Duration::from_secs(2)), 1, "+2 s");
        assert!(p.step(&rx, &mut s, t0 + Duration::from_secs(2)));
        assert_eq!(
            p.position_ns(t0 + Duration::from_secs(2)),
            Some(103 * S),
            "one event"
        );
        assert!(p.step(&rx, &mut s, t0 + Duration::from_secs(2)));
        assert_eq!(p.position_ns(t0 + Duration::from_secs(2)), Some(104 * S));
        assert!(!p.step(&rx, &mut s, t0 + Duration::from_secs(2)));
        assert_eq!(
            s.model.as_ref().map(|m| m.events),
            None,
            "no header: nothing modelled"
        );
    }

    #[test]
    fn unpaced_batches_go_whole() {
        let (tx, rx) = sync_channel(4);
        tx.send(Update::Events((0..10).map(|i| event(i * S)).collect()))
            .unwrap();
        drop(tx);
        let (mut p, mut s) = (Player::new(None), Stream::new("t"));
        assert_eq!(p.pump(&rx, &mut s, Instant::now()), 10);
        assert!(p.drained());
    }

    #[test]
    fn pause_freezes_the_clock_and_step_moves_it() {
        let rx = feed(&[0, S, 2 * S, 30 * S]);
        let (mut p, mut s) = (Player::new(Some(1.0)), Stream::new("t"));
        let t0 = Instant::now();
        assert_eq!(p.pump(&rx, &mut s, t0), 1);
        p.toggle_pause(t0);
        assert!(p.paused());
        assert_eq!(p.pump(&rx, &mut s, t0 + Duration::from_secs(10)), 0, "paused");
        assert!(p.step(&rx, &mut s, t0 + Duration::from_secs(10)));
        assert_eq!(
            p.position_ns(t0 + Duration::from_secs(20)),
            Some(S),
            "stepped to the event"
        );
        p.toggle_pause(t0 + Duration::from_secs(20));
        assert_eq!(
            p.pump(&rx, &mut s, t0 + Duration::from_millis(20_500)),
            0,
            "resumed at 1 s"
        );
        assert_eq!(p.pump(&rx, &mut s, t0 + Duration::from_secs(21)), 1, "2 s is due");
        p.set_speed(100.0, t0 + Duration::from_secs(21));
        assert_eq!(
            p.pump(&rx, &mut s, t0 + Duration::from_millis(21_300)),
            1,
            "28 s later at x100"
        );
        assert!(!p.step(&rx, &mut s, t0 + Duration::from_secs(22)), "nothing left");
    }
}
