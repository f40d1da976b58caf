//! The live loop: drain the ring buffer on a short timer (the kernel side never wakes us),
//! decode, hand events on; stop at the deadline or on SIGINT/SIGTERM/SIGHUP.
use std::{
    future,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Context, Result};
use log::debug;
use tokio::{
    signal::unix::{signal, Signal, SignalKind},
    time::{interval, sleep, MissedTickBehavior},
};

use crate::{
    kernel::decode,
    kernel::loader::Tracer,
    model::event::{Event, Op, ZoneId},
    recording::EndReason,
};

/// How often the ring buffer is drained. Hotplug events are rare; 1 MiB of ring holds ~9000
/// (36 000 a second before any is lost, and losses are counted). Each wakeup costs the host.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(250);
/// How often the counters are sampled (every this many drains: once a second).
const SAMPLE_EVERY: u32 = 4;

#[derive(Debug, Default, Clone, Copy)]
pub struct LiveCounts {
    pub events: u64,
    pub undecodable: u64,
}

/// SIGINT/SIGTERM/SIGHUP handlers. Installed before anything is announced, so that a signal
/// can never kill us between "ready" and the summary. SIGHUP (the terminal closed, an ssh
/// session dropped) ends a recording as cleanly as Ctrl-C.
pub struct StopSignals {
    sigint: Signal,
    sigterm: Signal,
    sighup: Signal,
}

impl StopSignals {
    pub fn install() -> Result<StopSignals> {
        Ok(StopSignals {
            sigint: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            sigterm: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            sighup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }
}

/// Runs until `duration` has passed (forever if None), a signal arrives or `stop` is set;
/// returns why it stopped and what it saw.
/// `on_event` gets each event; `on_tick` runs after each drain (and sample), when the events
/// of that drain have all been handed over.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    tracer: &mut Tracer,
    nodes: &[i32],
    signals: &mut StopSignals,
    stop: &AtomicBool,
    duration: Option<Duration>,
    mut on_event: impl FnMut(Event) -> Result<()>,
    mut on_tick: impl FnMut() -> Result<()>,
) -> Result<(EndReason, LiveCounts)> {
    let mut tick = interval(DRAIN_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = async {
        match duration {
            Some(d) => sleep(d).await,
            None => future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let mut counts = LiveCounts::default();
    let mut sampler = Sampler::default();
    let mut ticks = 0u32;
    let reason = loop {
        tokio::select! {
            _ = tick.tick() => {
                drain(tracer, &mut counts, &mut on_event)?;
                ticks += 1;
                if ticks.is_multiple_of(SAMPLE_EVERY) {
                    sampler.sample(tracer, nodes, &mut on_event)?;
                }
                on_tick()?;
                if stop.load(Ordering::Relaxed) {
                    break EndReason::Stopped;
                }
            }
            _ = &mut deadline => break EndReason::Duration,
            _ = signals.sigint.recv() => break EndReason::Sigint,
            _ = signals.sigterm.recv() => break EndReason::Sigterm,
            _ = signals.sighup.recv() => break EndReason::Sighup,
        }
    };
    drain(tracer, &mut counts, &mut on_event)?;
    sampler.sample(tracer, nodes, &mut on_event)?;
    on_tick()?;
    Ok((reason, counts))
}

/// Turns the kernel's cumulative counters into sample events: lost events when they grew,
/// each probe's run-time statistics when its run count moved, and slow-path calls for each
/// zone whose count moved since the last sample.
#[derive(Default)]
struct Sampler {
    last: std::collections::BTreeMap<ZoneId, u64>,
    lost: u64,
    costs: std::collections::BTreeMap<String, u64>,
    /// Free page reporting: blocks isolated/put back per (zone, order), requests, and the
    /// order as sysfs shows it.
    reported: std::collections::BTreeMap<(ZoneId, u8), (u64, u64)>,
    requests: u64,
    order_param: Option<i64>,
}

impl Sampler {
    fn sample(
        &mut self,
        tracer: &Tracer,
        nodes: &[i32],
        on_event: &mut impl FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        let now = clocks().monotonic_ns;
        let lost = tracer.lost_events();
        if lost > self.lost {
            self.lost = lost;
            on_event(Event {
                ts_ns: now,
                duration_ns: 0,
                tid: 0,
                op: Op::LostEventsSample { total: lost },
            })?;
        }
        for (probe, cost) in tracer.probe_costs() {
            if self.costs.get(&probe) != Some(&cost.runs) {
                self.costs.insert(probe.clone(), cost.runs);
                on_event(Event {
                    ts_ns: now,
                    duration_ns: 0,
                    tid: 0,
                    op: Op::ProbeCostSample {
                        probe,
                        runs: cost.runs,
                        run_time_ns: cost.run_time_ns,
                    },
                })?;
            }
        }
        let order = std::fs::read_to_string(crate::kernel::probes::PAGE_REPORTING_ORDER_PARAM)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok());
        if order.is_some() && order != self.order_param {
            self.order_param = order;
            on_event(Event {
                ts_ns: now,
                duration_ns: 0,
                tid: 0,
                op: Op::ReportingOrderSample {
                    order: order.unwrap_or_default(),
                },
            })?;
        }
        if let Some(calls) = tracer.reporting_requests().filter(|&c| c > self.requests) {
            self.requests = calls;
            on_event(Event {
                ts_ns: now,
                duration_ns: 0,
                tid: 0,
                op: Op::ReportingRequestsSample { calls },
            })?;
        }
        for (zone, counts) in tracer.reporting_counts(nodes) {
            for order in 0..probe_common::REPORT_ORDERS {
                let now_counts = (counts.isolated[order], counts.putback[order]);
                let key = (zone, order as u8);
                if now_counts != (0, 0) && self.reported.insert(key, now_counts) != Some(now_counts) {
                    on_event(Event {
                        ts_ns: now,
                        duration_ns: 0,
                        tid: 0,
                        op: Op::ReportedPagesSample {
                            zone,
                            order: order as u8,
                            isolated: now_counts.0,
                            putback: now_counts.1,
                        },
                    })?;
                }
            }
        }
        for (zone, calls) in tracer.slowpath_calls(nodes) {
            if self.last.insert(zone, calls) != Some(calls) {
                on_event(Event {
                    ts_ns: now,
                    duration_ns: 0,
                    tid: 0,
                    op: Op::SlowPathSample { zone, calls },
                })?;
            }
        }
        Ok(())
    }
}

fn drain(
    tracer: &mut Tracer,
    counts: &mut LiveCounts,
    on_event: &mut impl FnMut(Event) -> Result<()>,
) -> Result<()> {
    let mut result = Ok(());
    let ctx = tracer.decode.clone();
    tracer.drain(|bytes| {
        if result.is_err() {
            return;
        }
        match decode::parse_raw(bytes).and_then(|raw| decode::decode_with(&ctx, &raw)) {
            Ok(ev) => {
                counts.events += 1;
                result = on_event(ev);
            }
            Err(e) => {
                counts.undecodable += 1;
                debug!("undecodable record: {e}");
            }
        }
    });
    result
}

/// CLOCK_MONOTONIC (what bpf_ktime_get_ns reads) and CLOCK_REALTIME, read back to back.
pub fn clocks() -> crate::recording::Clock {
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid clock id and out-pointer.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    };
    crate::recording::Clock {
        monotonic_ns: read(libc::CLOCK_MONOTONIC),
        realtime_ns: read(libc::CLOCK_REALTIME),
    }
}
