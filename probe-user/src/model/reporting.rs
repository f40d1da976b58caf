//! Free page reporting (mm/page_reporting.c): what the guest handed back to the host, per
//! zone and order, how often, and how long it waited for the host's acknowledgement.
//!
//! Three sources: events for each report cycle (`page_reporting_process`) and each report
//! (the device callback: bytes, zone, ack wait), and per-CPU counters sampled as running
//! totals (blocks isolated for reporting and put back, per zone and order; requests), whose
//! rates come from the difference between two samples.
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::stats::{DurationSummary, Durations};
use crate::model::event::{Event, Op, ZoneId};

/// A counter sampled as a running total: its latest value, and its rate over the last
/// sampled interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sampled {
    last: Option<(u64, u64)>,
    rate: f64,
    peak: f64,
}

impl Sampled {
    pub fn sample(&mut self, ts_ns: u64, total: u64) {
        if let Some((t0, v0)) = self.last {
            if ts_ns > t0 {
                self.rate = total.saturating_sub(v0) as f64 / ((ts_ns - t0) as f64 / 1e9);
                self.peak = self.peak.max(self.rate);
            }
        }
        self.last = Some((ts_ns, total));
    }

    pub fn total(&self) -> u64 {
        self.last.map_or(0, |l| l.1)
    }

    /// Per second over the last sampled interval (0 before two samples).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn peak(&self) -> f64 {
        self.peak
    }
}

/// One zone and order: blocks isolated for reporting and put back (running totals).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderCounts {
    pub isolated: Sampled,
    pub putback: Sampled,
}

/// One zone's reporting.
#[derive(Debug, Clone, Default)]
pub struct ZoneReporting {
    /// Report calls whose pages came from this zone, their blocks and bytes.
    pub reports: u64,
    pub blocks: u64,
    pub bytes: u64,
    pub failed: u64,
    /// Of those, reports (and their bytes) of a cycle that began before tracing did: their
    /// pages were isolated before the counters below counted.
    pub reports_unseen_cycle: u64,
    pub bytes_unseen_cycle: u64,
    /// Blocks of each order isolated and put back (from the counters).
    pub orders: BTreeMap<u8, OrderCounts>,
}

impl ZoneReporting {
    /// Pages isolated for reporting, from the counters (2^order pages per block).
    pub fn isolated_pages(&self) -> u64 {
        self.orders.iter().map(|(o, c)| c.isolated.total() << o).sum()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Reporting {
    /// The latest `page_reporting_register`: (order, device order, capacity, ret).
    pub registered: Option<Registration>,
    /// `page_reporting_order` as sysfs showed it, latest.
    pub order_param: Option<i64>,
    /// Report cycles: their durations, and (as pages) the pages isolated in each.
    pub cycles: Durations,
    /// Cycles whose totals were unknown (ended on another CPU).
    pub cycles_without_totals: u64,
    /// Bytes the cycles handed over (their own totals).
    pub cycle_bytes: u64,
    /// Reports: time waited for the host's ack, and (as pages) their PAGE_SIZE pages.
    pub acks: Durations,
    pub reports_failed: u64,
    pub report_bytes: u64,
    /// Reports whose zone was unreadable.
    pub reports_without_zone: u64,
    /// Reports of a cycle that began before tracing did.
    pub reports_unseen_cycle: u64,
    pub zones: BTreeMap<ZoneId, ZoneReporting>,
    /// `__page_reporting_notify` calls (running total).
    pub requests: Sampled,
    /// First and last reporting event (cycles and reports), for the average rates.
    first_ns: Option<u64>,
    last_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Registration {
    pub ts_ns: u64,
    /// `page_reporting_order` after the call (None: unknown).
    pub order: Option<u32>,
    pub device_order: i32,
    pub capacity: Option<u32>,
    pub ret: i32,
}

impl Reporting {
    /// Whether anything about reporting was seen.
    pub fn seen(&self) -> bool {
        self.registered.is_some()
            || self.cycles.count() > 0
            || self.acks.count() > 0
            || !self.zones.is_empty()
            || self.requests.total() > 0
    }

    fn touch(&mut self, ev: &Event) {
        self.first_ns = Some(self.first_ns.map_or(ev.start_ns(), |f| f.min(ev.start_ns())));
        self.last_ns = self.last_ns.max(ev.ts_ns);
    }

    /// Seconds between the first reporting event's start and the last one's end.
    pub fn span_s(&self) -> f64 {
        self.first_ns
            .map_or(0.0, |f| self.last_ns.saturating_sub(f) as f64 / 1e9)
    }

    fn per_second(&self, n: u64) -> f64 {
        let s = self.span_s();
        if s > 0.0 {
            n as f64 / s
        } else {
            0.0
        }
    }

    pub fn ingest(&mut self, ev: &Event, page_size: u64) {
        let page = page_size.max(1);
        match ev.op {
            Op::ReportingRegister {
                order,
                device_order,
                capacity,
                ret,
            } => {
                self.registered = Some(Registration {
                    ts_ns: ev.ts_ns,
                    order,
                    device_order,
                    capacity,
                    ret,
                });
            }
            Op::ReportingOrderSample { order } => self.order_param = Some(order),
            Op::ReportingCycle {
                totals_known,
                bytes,
                isolated_pages,
                ..
            } => {
                self.touch(ev);
                self.cycles.record(ev.duration_ns, isolated_pages);
                if totals_known {
                    self.cycle_bytes += bytes;
                } else {
                    self.cycles_without_totals += 1;
                }
            }
            Op::PageReport {
                zone,
                nents,
                bytes,
                in_seen_cycle,
                ret,
                ..
            } => {
                self.touch(ev);
                self.acks.record(ev.duration_ns, bytes / page);
                self.report_bytes += bytes;
                if ret != 0 {
                    self.reports_failed += 1;
                }
                // Recordings that did not tell had every report counted as in a seen cycle.
                let unseen = in_seen_cycle == Some(false);
                self.reports_unseen_cycle += u64::from(unseen);
                match zone {
                    Some(z) => {
                        let zr = self.zones.entry(z).or_default();
                        zr.reports += 1;
                        zr.blocks += u64::from(nents);
                        zr.bytes += bytes;
                        if ret != 0 {
                            zr.failed += 1;
                        }
                        if unseen {
                            zr.reports_unseen_cycle += 1;
                            zr.bytes_unseen_cycle += bytes;
                        }
                    }
                    None => self.reports_without_zone += 1,
                }
            }
            Op::ReportedPagesSample {
                zone,
                order,
                isolated,
                putback,
            } => {
                let c = self
                    .zones
                    .entry(zone)
                    .or_default()
                    .orders
                    .entry(order)
                    .or_default();
                c.isolated.sample(ev.ts_ns, isolated);
                c.putback.sample(ev.ts_ns, putback);
            }
            Op::ReportingRequestsSample { calls } => self.requests.sample(ev.ts_ns, calls),
            _ => {}
        }
    }

    /// What the report, JSON and metrics show. `zone_name` names a zone; `figures` gives a
    /// zone's (free, present, spanned, hot-added blocks) from the model.
    pub fn doc(
        &self,
        page_size: u64,
        zone_name: impl Fn(u8) -> String,
        figures: impl Fn(ZoneId) -> ZoneFigures,
    ) -> ReportingDoc {
        let zones = self
            .zones
            .iter()
            .map(|(&id, z)| {
                let f = figures(id);
                ReportingZoneDoc {
                    node: id.node,
                    zone: zone_name(id.zone),
                    reports: z.reports,
                    reported_bytes: z.bytes,
                    reported_blocks: z.blocks,
                    failed_reports: z.failed,
                    reports_unseen_cycle: z.reports_unseen_cycle,
                    reported_bytes_unseen_cycle: z.bytes_unseen_cycle,
                    isolated_pages: z.isolated_pages(),
                    isolated_bytes: z.isolated_pages() * page_size,
                    orders: z
                        .orders
                        .iter()
                        .map(|(&order, c)| ReportingOrderDoc {
                            order,
                            isolated_blocks: c.isolated.total(),
                            putback_blocks: c.putback.total(),
                            isolated_bytes: (c.isolated.total() << order) * page_size,
                            isolated_bytes_per_s: c.isolated.rate() * (page_size << order) as f64,
                        })
                        .collect(),
                    free_pages: f.free,
                    present_pages: f.present,
                    spanned_pages: f.spanned,
                    sparse: f.present.map(|p| f.spanned > p),
                    hot_added_blocks: f.hot_added_blocks,
                }
            })
            .collect();
        ReportingDoc {
            registered: self.registered.clone(),
            order_param: self.order_param,
            cycles: self.cycles.summary(),
            cycles_per_s: self.per_second(self.cycles.count()),
            cycles_without_totals: self.cycles_without_totals,
            cycle_bytes: self.cycle_bytes,
            reports: self.acks.count(),
            reports_per_s: self.per_second(self.acks.count()),
            reports_failed: self.reports_failed,
            reported_bytes: self.report_bytes,
            reports_without_zone: self.reports_without_zone,
            reports_unseen_cycle: self.reports_unseen_cycle,
            host_ack: self.acks.summary(),
            requests: self.requests.total(),
            requests_per_s: self.requests.rate(),
            zones,
        }
    }
}

/// A zone's figures from the model, beside its reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZoneFigures {
    pub free: Option<u64>,
    pub present: Option<u64>,
    pub spanned: u64,
    pub hot_added_blocks: u64,
}

/// Free page reporting, as the report and JSON give it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportingDoc {
    /// The latest `page_reporting_register` (None: none seen while tracing).
    pub registered: Option<Registration>,
    /// /sys/module/page_reporting/parameters/page_reporting_order, latest (-1, 4294967295
    /// or 11 on 6.1: not chosen yet).
    pub order_param: Option<i64>,
    /// Report cycles (`page_reporting_process`): count, durations; `pages` = pages isolated.
    pub cycles: DurationSummary,
    /// Cycles per second, between the first and the last reporting event.
    pub cycles_per_s: f64,
    pub cycles_without_totals: u64,
    /// Bytes handed to the host as the cycles counted them.
    pub cycle_bytes: u64,
    /// Report callback calls, per second, failed.
    pub reports: u64,
    pub reports_per_s: f64,
    pub reports_failed: u64,
    /// Bytes handed to the host (sum of the reports' scatterlist lengths).
    pub reported_bytes: u64,
    pub reports_without_zone: u64,
    /// Reports of a cycle that began before tracing did (counted in `reports`).
    pub reports_unseen_cycle: u64,
    /// Time the guest waited for the host's acknowledgement, per report; `pages` = pages.
    pub host_ack: DurationSummary,
    /// `__page_reporting_notify` calls (reporting requested) and their latest rate.
    pub requests: u64,
    pub requests_per_s: f64,
    pub zones: Vec<ReportingZoneDoc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportingZoneDoc {
    pub node: i32,
    pub zone: String,
    /// From the report events: calls, bytes and blocks handed over, failed calls.
    pub reports: u64,
    pub reported_bytes: u64,
    pub reported_blocks: u64,
    pub failed_reports: u64,
    /// Of those, the reports (and bytes) of a cycle that began before tracing did: their
    /// pages were isolated before the counters counted, so `isolated_bytes` lacks them.
    pub reports_unseen_cycle: u64,
    pub reported_bytes_unseen_cycle: u64,
    /// From the counters: pages (and bytes) isolated for reporting.
    pub isolated_pages: u64,
    pub isolated_bytes: u64,
    pub orders: Vec<ReportingOrderDoc>,
    /// The zone's free and present pages (/proc/zoneinfo, latest frame) and span.
    pub free_pages: Option<u64>,
    pub present_pages: Option<u64>,
    pub spanned_pages: u64,
    /// Holes in its span (spanned > present).
    pub sparse: Option<bool>,
    /// Blocks of the zone that were hot-added.
    pub hot_added_blocks: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportingOrderDoc {
    pub order: u8,
    /// Blocks of 2^order pages isolated for reporting and put back (counters).
    pub isolated_blocks: u64,
    pub putback_blocks: u64,
    pub isolated_bytes: u64,
    /// Over the last sampled interval.
    pub isolated_bytes_per_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts_ns: u64, duration_ns: u64, op: Op) -> Event {
        Event {
            ts_ns,
            duration_ns,
            tid: 9,
            op,
        }
    }

    const MOVABLE: ZoneId = ZoneId { node: 1, zone: 3 };

    fn report(zone: Option<ZoneId>, bytes: u64, ret: i32) -> Op {
        Op::PageReport {
            zone,
            nents: (bytes >> 21) as u32,
            bytes,
            orders: 1 << 9,
            first_pfn: Some(0x100200),
            in_seen_cycle: Some(true),
            ret,
        }
    }

    #[test]
    fn counters_sampled_as_running_totals_give_rates_from_differences() {
        let mut r = Reporting::default();
        let sample = |isolated, putback| Op::ReportedPagesSample {
            zone: MOVABLE,
            order: 9,
            isolated,
            putback,
        };
        r.ingest(&ev(1_000_000_000, 0, sample(10, 10)), 4096);
        assert_eq!(r.zones[&MOVABLE].orders[&9].isolated.rate(), 0.0);
        r.ingest(&ev(3_000_000_000, 0, sample(30, 26)), 4096);
        let c = &r.zones[&MOVABLE].orders[&9];
        assert_eq!(c.isolated.total(), 30);
        assert_eq!(c.putback.total(), 26);
        assert_eq!(c.isolated.rate(), 10.0);
        assert_eq!(c.putback.rate(), 8.0);
        // A quieter interval: the rate falls, the peak stays.
        r.ingest(&ev(4_000_000_000, 0, sample(31, 31)), 4096);
        let c = &r.zones[&MOVABLE].orders[&9];
        assert_eq!(c.isolated.rate(), 1.0);
        assert_eq!(c.isolated.peak(), 10.0);
        assert_eq!(r.zones[&MOVABLE].isolated_pages(), 31 << 9);

        r.ingest(
            &ev(1_000_000_000, 0, Op::ReportingRequestsSample { calls: 5 }),
            4096,
        );
        r.ingest(
            &ev(1_500_000_000, 0, Op::ReportingRequestsSample { calls: 10 }),
            4096,
        );
        assert_eq!(r.requests.total(), 10);
        assert_eq!(r.requests.rate(), 10.0);
    }

    #[test]
    fn cycles_and_reports_per_zone_and_order() {
        let mut r = Reporting::default();
        assert!(!r.seen());
        let normal = ZoneId { node: 0, zone: 2 };
        // Cycle 1: two reports from Movable (32 + 8 blocks of 2 MiB), one from Normal.
        r.ingest(
            &ev(2_010_000_000, 2_000_000, report(Some(MOVABLE), 64 << 20, 0)),
            4096,
        );
        r.ingest(
            &ev(2_020_000_000, 1_000_000, report(Some(MOVABLE), 16 << 20, 0)),
            4096,
        );
        r.ingest(
            &ev(2_030_000_000, 3_000_000, report(Some(normal), 2 << 20, 0)),
            4096,
        );
        r.ingest(
            &ev(
                2_040_000_000,
                40_000_000,
                Op::ReportingCycle {
                    totals_known: true,
                    reports: 3,
                    failed: 0,
                    bytes: 82 << 20,
                    isolated_pages: 82 << 8,
                },
            ),
            4096,
        );
        // Cycle 2, 2 s later: a failed report with no readable zone; totals unknown.
        r.ingest(&ev(4_010_000_000, 5_000_000, report(None, 2 << 20, -5)), 4096);
        r.ingest(
            &ev(
                4_040_000_000,
                40_000_000,
                Op::ReportingCycle {
                    totals_known: false,
                    reports: 0,
                    failed: 0,
                    bytes: 0,
                    isolated_pages: 0,
                },
            ),
            4096,
        );
        r.ingest(
            &ev(
                4_050_000_000,
                0,
                Op::ReportedPagesSample {
                    zone: MOVABLE,
                    order: 9,
                    isolated: 40,
                    putback: 40,
                },
            ),
            4096,
        );
        assert!(r.seen());
        let names = ["DMA", "DMA32", "Normal", "Movable"];
        let doc = r.doc(
            4096,
            |z| names[z as usize].to_string(),
            |id| ZoneFigures {
                free: Some(1000),
                present: Some(if id == MOVABLE { 32768 } else { 100 }),
                spanned: if id == MOVABLE { 65536 } else { 100 },
                hot_added_blocks: if id == MOVABLE { 2 } else { 0 },
            },
        );
        assert_eq!(doc.cycles.count, 2);
        assert_eq!(doc.cycles.max_ns, 40_000_000);
        assert_eq!(doc.cycles_without_totals, 1);
        assert_eq!(doc.cycle_bytes, 82 << 20);
        assert_eq!(doc.reports, 4);
        assert_eq!(doc.reports_failed, 1);
        assert_eq!(doc.reports_without_zone, 1);
        assert_eq!(doc.reported_bytes, 84 << 20);
        assert_eq!(doc.host_ack.max_ns, 5_000_000);
        // 2 cycles and 4 reports between 2.0 s (the first cycle's start) and 4.04 s (the last one's end).
        assert!((doc.cycles_per_s - 2.0 / 2.04).abs() < 1e-9);
        assert!((doc.reports_per_s - 4.0 / 2.04).abs() < 1e-9);
        let m = doc.zones.iter().find(|z| z.zone == "Movable").unwrap();
        assert_eq!(
            (m.reports, m.reported_bytes, m.reported_blocks),
            (2, 80 << 20, 40)
        );
        assert_eq!(m.isolated_pages, 40 << 9);
        assert_eq!(m.isolated_bytes, 80 << 20);
        assert_eq!(m.orders.len(), 1);
        assert_eq!(m.orders[0].order, 9);
        assert_eq!(m.orders[0].isolated_bytes, 80 << 20);
        assert_eq!(m.sparse, Some(true));
        assert_eq!(m.hot_added_blocks, 2);
        let n = doc.zones.iter().find(|z| z.zone == "Normal").unwrap();
        assert_eq!((n.reports, n.reported_bytes), (1, 2 << 20));
        assert_eq!(n.sparse, Some(false));
    }

    #[test]
    fn reports_of_a_cycle_begun_before_tracing_are_kept_apart_from_the_isolation_counts() {
        let mut r = Reporting::default();
        let with = |in_seen_cycle| match report(Some(MOVABLE), 4 << 20, 0) {
            Op::PageReport {
                zone,
                nents,
                bytes,
                orders,
                first_pfn,
                ret,
                ..
            } => Op::PageReport {
                zone,
                nents,
                bytes,
                orders,
                first_pfn,
                in_seen_cycle,
                ret,
            },
            _ => unreachable!(),
        };
        // The cycle running as tracing began: its report is seen, its start and isolations not.
        r.ingest(&ev(1_000_000_000, 1_000, with(Some(false))), 4096);
        // A whole cycle after: one report, its 2 blocks of order 9 isolated.
        r.ingest(&ev(3_000_000_000, 1_000, with(Some(true))), 4096);
        // A recording that did not tell: counted as in a seen cycle, as it always was.
        r.ingest(&ev(3_100_000_000, 1_000, with(None)), 4096);
        let doc = r.doc(4096, |_| "Movable".into(), |_| ZoneFigures::default());
        assert_eq!((doc.reports, doc.reports_unseen_cycle), (3, 1));
        assert_eq!(doc.reported_bytes, 12 << 20);
        let z = &doc.zones[0];
        assert_eq!((z.reports, z.reported_bytes), (3, 12 << 20));
        assert_eq!(
            (z.reports_unseen_cycle, z.reported_bytes_unseen_cycle),
            (1, 4 << 20)
        );
    }
}
