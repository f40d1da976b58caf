//! Prometheus/OpenMetrics metrics of one stream, computed from its model at scrape time (as
//! ebpf_exporter does): nothing is counted a second time beside the model, so a scrape shows
//! exactly what `report` would print at that moment.
//!
//! Label values that are not known (a node mhpscope could not attribute) are "unknown"; known
//! label combinations (every node x op x result, every zone x check...) are exported as 0 from
//! the start, so that `increase()` sees the first event instead of a series appearing at 1.
use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    sync::{Arc, Mutex, PoisonError},
};

use prometheus_client::{
    collector::Collector,
    encoding::{text, DescriptorEncoder, EncodeMetric, NoLabelSet},
    metrics::{
        counter::ConstCounter, exemplar::Exemplar, gauge::ConstGauge, histogram::exponential_buckets,
        MetricType,
    },
    registry::{Registry, Unit},
};

use crate::views::answers::Thresholds;
use crate::{
    model::event::ZoneId,
    model::AttemptKind,
    model::{BlockState, Check, Durations, Model, OpKind, Placement, ZoneState},
    recording::stream::Stream,
    views::answers::{AnswerKind, Answers},
};

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the duration histograms, in seconds: 10 us doubling up to ~10.5 s. A memmap
/// init of one 128 MiB block takes about a millisecond, of a 1 GiB ZONE_DEVICE range tenths of a
/// second; an offline that has to migrate pages can take seconds.
pub fn duration_buckets() -> Vec<f64> {
    exponential_buckets(10e-6, 2.0, 21).collect()
}

/// A registry whose only collector reads `stream` at each scrape; the answers are judged by
/// `thresholds`.
pub fn registry(stream: Arc<Mutex<Stream>>, thresholds: Thresholds) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StreamCollector { stream, thresholds }));
    registry
}

/// The OpenMetrics text of a registry, `# EOF` included.
pub fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::new();
    text::encode(&mut out, registry)?;
    Ok(out)
}

pub struct StreamCollector {
    stream: Arc<Mutex<Stream>>,
    thresholds: Thresholds,
}

impl fmt::Debug for StreamCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamCollector").finish_non_exhaustive()
    }
}

impl Collector for StreamCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        // A panic elsewhere while the lock was held leaves the stream as it was: still worth serving.
        let stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        write_stream(&stream, self.thresholds, &mut encoder)
    }
}

type Labels = Vec<(&'static str, String)>;

fn write_stream(s: &Stream, thresholds: Thresholds, enc: &mut DescriptorEncoder) -> fmt::Result {
    let ended = match (&s.summary, s.failure.is_some() || s.truncated.is_some()) {
        (Some(_), _) => 1,
        (None, true) => 2,
        (None, false) => 0,
    };
    gauge(
        enc,
        "mhpscope_stream_ended",
        "0 while the source runs, 1 once it ended with its summary, 2 if it failed or was cut short (what was read is kept)",
        ended,
    )?;
    let kernel_release = s
        .header
        .as_ref()
        .map_or_else(|| "unknown".into(), |h| h.host.kernel_release.clone());
    gauges(
        enc,
        "mhpscope_info",
        "Always 1: the traced kernel, where the events come from and this mhpscope's version",
        None,
        vec![(
            vec![
                ("kernel_release", kernel_release),
                ("origin", s.origin.clone()),
                ("version", env!("CARGO_PKG_VERSION").into()),
            ],
            1,
        )],
    )?;
    let (Some(header), Some(model)) = (&s.header, &s.model) else {
        return Ok(());
    };
    gauges(
        enc,
        "mhpscope_probe_attached",
        "1 if the probe point is attached (by `method`), 0 if not (`mhpscope probes` says why)",
        None,
        header
            .probes
            .iter()
            .map(|p| {
                let labels = vec![
                    ("probe", p.name.clone()),
                    ("function", p.function.clone()),
                    ("method", p.method.map_or("none", |m| m.as_str()).to_string()),
                ];
                (labels, u64::from(p.attached))
            })
            .collect(),
    )?;
    counters(
        enc,
        "mhpscope_probe_runs",
        "Runs of the probe's eBPF programs (BPF run-time statistics; entry and exit count separately)",
        None,
        model
            .probe_costs
            .iter()
            .map(|(p, c)| (vec![("probe", p.clone())], c.runs))
            .collect(),
    )?;
    {
        let unit = Unit::Seconds;
        let mut m = enc.encode_descriptor(
            "mhpscope_probe_run_time",
            "Time spent in the probe's eBPF programs: mhpscope's own cost in the kernel",
            Some(&unit),
            MetricType::Counter,
        )?;
        for (p, c) in &model.probe_costs {
            let labels: Labels = vec![("probe", p.clone())];
            ConstCounter::new(c.run_time_ns as f64 / 1e9).encode(m.encode_family(&labels)?)?;
        }
    }
    counter(
        enc,
        "mhpscope_events",
        "Events applied to the model",
        model.events,
    )?;
    counter(
        enc,
        "mhpscope_lost_events",
        "Events the kernel dropped because the ring buffer was full (the other metrics miss them)",
        model.lost_events,
    )?;
    counter(
        enc,
        "mhpscope_undecodable_events",
        "Records that arrived but could not be decoded (known once the source has ended)",
        s.summary.as_ref().map_or(0, |x| x.undecodable_events),
    )?;
    write_nodes(model, enc)?;
    write_blocks(model, enc)?;
    write_zones(model, enc)?;
    let reporting_traced = header
        .probes
        .iter()
        .any(|p| p.name == crate::kernel::probes::PAGE_REPORTING_PROCESS && p.attached);
    write_reporting(model, reporting_traced, enc)?;
    write_answers(model, thresholds, enc)
}

/// Free page reporting: cycles, reports and the host's ack wait, bytes per zone and order.
/// Exported when the cycles are traced or reporting events arrived (no series otherwise,
/// rather than a false 0).
fn write_reporting(model: &Model, traced: bool, enc: &mut DescriptorEncoder) -> fmt::Result {
    let r = &model.reporting;
    if !traced && !r.seen() {
        return Ok(());
    }
    let doc = model.reporting_doc();
    counter(
        enc,
        "mhpscope_reporting_cycles",
        "Free page reporting cycles (page_reporting_process runs)",
        doc.cycles.count,
    )?;
    histograms(
        enc,
        "mhpscope_reporting_cycle_duration",
        "Time of each free page reporting cycle, host waits included",
        vec![(Vec::new(), Hist::of(&r.cycles))],
    )?;
    histograms(
        enc,
        "mhpscope_reporting_host_ack_duration",
        "Time the guest waited for the host to acknowledge each report (the report callback's time)",
        vec![(Vec::new(), Hist::of(&r.acks))],
    )?;
    counters(
        enc,
        "mhpscope_reporting_reports",
        "Reports to the host (the device's report callback) by result",
        None,
        vec![
            (vec![("result", "ok".into())], doc.reports - doc.reports_failed),
            (vec![("result", "error".into())], doc.reports_failed),
        ],
    )?;
    counter(
        enc,
        "mhpscope_reporting_requests",
        "Free page reporting requests (__page_reporting_notify: frees at or above page_reporting_order)",
        doc.requests,
    )?;
    let l = &model.layout;
    let zone_labels =
        |id: &ZoneId| -> Labels { vec![("node", node(id.node)), ("zone", l.zone_name(id.zone))] };
    // Every zone, 0 until it reports: a zone that never reports is an answer too.
    let mut bytes: BTreeMap<ZoneId, u64> = model.zones.keys().map(|&id| (id, 0)).collect();
    for (&id, z) in &r.zones {
        *bytes.entry(id).or_default() += z.bytes;
    }
    counters(
        enc,
        "mhpscope_reporting_reported",
        "Bytes handed to the host per zone (sum of the reports' scatterlist lengths)",
        Some(Unit::Bytes),
        bytes.iter().map(|(id, &v)| (zone_labels(id), v)).collect(),
    )?;
    let page = l.page_size;
    let per_order = |f: &dyn Fn(&crate::model::reporting::OrderCounts) -> u64| -> Vec<(Labels, u64)> {
        r.zones
            .iter()
            .flat_map(|(id, z)| {
                z.orders.iter().map(move |(&o, c)| {
                    let mut labels = zone_labels(id);
                    labels.push(("order", o.to_string()));
                    (labels, (f(c) << o) * page)
                })
            })
            .collect()
    };
    counters(
        enc,
        "mhpscope_reporting_isolated",
        "Bytes taken off the free lists for reporting per zone and order (__isolate_free_page \
         inside report cycles; per-CPU counters sampled once a second)",
        Some(Unit::Bytes),
        per_order(&|c| c.isolated.total()),
    )?;
    counters(
        enc,
        "mhpscope_reporting_putback",
        "Bytes put back on the free lists after reporting per zone and order \
         (__putback_isolated_page inside report cycles)",
        Some(Unit::Bytes),
        per_order(&|c| c.putback.total()),
    )?;
    // The order registration chose, else the sysfs parameter once it holds an order (before a
    // device registers it reads -1, 4294967295 or, on 6.1, MAX_ORDER 11: no order yet).
    let order = doc
        .registered
        .as_ref()
        .and_then(|g| g.order.map(u64::from))
        .or(doc
            .order_param
            .and_then(|o| u64::try_from(o).ok())
            .filter(|&o| o <= 10));
    if let Some(order) = order {
        gauge(
            enc,
            "mhpscope_reporting_order",
            "page_reporting_order: blocks of 2^order pages and larger are reported (from page_reporting_register, else sysfs)",
            order,
        )?;
    }
    Ok(())
}

/// Why attempts failed, how long added memory waited to be usable, what is still offline, and
/// the configuration: the answers of the report, as series.
fn write_answers(
    model: &Model,
    t: crate::views::answers::Thresholds,
    enc: &mut DescriptorEncoder,
) -> fmt::Result {
    let a = Answers::build(
        model,
        &model.config,
        crate::views::answers::Thresholds {
            now_ns: t.now_ns.max(model.last_ts_ns()),
            ..t
        },
    );
    let mut attempts: BTreeMap<(&str, String, String, String), u64> = BTreeMap::new();
    for &n in model.nodes.keys() {
        for op in ["online", "offline"] {
            attempts.insert((op, "ok".into(), "none".into(), node(n)), 0);
        }
    }
    for (&(kind, ret, reason, n), &v) in &model.attempts.counts {
        let op = match kind {
            AttemptKind::Online => "online",
            AttemptKind::Offline => "offline",
        };
        let reason = reason.map_or_else(|| "none".into(), |r| serde_label(&r));
        *attempts
            .entry((op, crate::errno::errno_name(ret), reason, node_opt(n)))
            .or_default() += v;
    }
    counters(
        enc,
        "mhpscope_block_attempts",
        "Online and offline attempts of memory blocks by result (errno name) and reason (the step \
         that failed: failure_to_isolate_range, notifier_failure, ...)",
        None,
        attempts
            .into_iter()
            .map(|((op, result, reason, n), v)| {
                (
                    vec![
                        ("op", op.into()),
                        ("result", result),
                        ("reason", reason),
                        ("node", n),
                    ],
                    v,
                )
            })
            .collect(),
    )?;

    let l = &model.layout;
    counters(
        enc,
        "mhpscope_online_decisions",
        "Block onlines by what was asked (online, online_kernel, online_movable, unset), the online \
         policy in force as it ran, and the zone it went to (none: it failed): why this zone",
        None,
        model
            .attempts
            .decisions
            .iter()
            .map(|(&(requested, policy, zone, n), &v)| {
                (
                    vec![
                        ("requested", serde_label(&requested)),
                        (
                            "policy",
                            policy.map_or_else(|| "unknown".into(), |p| p.as_str().to_string()),
                        ),
                        (
                            "zone",
                            zone.map_or_else(|| "none".into(), |z| l.zone_name(z.zone)),
                        ),
                        ("node", node(n)),
                    ],
                    v,
                )
            })
            .collect(),
    )?;

    let mut latency: BTreeMap<String, Vec<u64>> =
        model.nodes.keys().map(|&n| (node(n), Vec::new())).collect();
    let mut offline: BTreeMap<String, u64> = model.nodes.keys().map(|&n| (node(n), 0)).collect();
    for r in &a.readiness {
        let l = latency.entry(node(r.node)).or_default();
        l.extend(r.blocks.iter().filter_map(|b| b.online_after_ns));
        *offline.entry(node(r.node)).or_default() += r.offline_blocks;
    }
    histograms(
        enc,
        "mhpscope_add_to_online_duration",
        "From a hot-add to each of its blocks' first online: how long added memory waited to be usable",
        latency
            .into_iter()
            .map(|(n, v)| (vec![("node", n)], Hist::of_samples(&v)))
            .collect(),
    )?;
    gauges(
        enc,
        "mhpscope_added_offline_blocks",
        "Blocks hot-added while traced that are still offline (never onlined, or offlined again)",
        None,
        offline.into_iter().map(|(n, v)| (vec![("node", n)], v)).collect(),
    )?;

    let mut findings: BTreeMap<String, u64> = [
        AnswerKind::OfflineFailed,
        AnswerKind::OnlineFailed,
        AnswerKind::AllocationFailed,
        AnswerKind::NeverOnlined,
        AnswerKind::Headroom,
    ]
    .iter()
    .map(|k| (serde_label(k), 0))
    .collect();
    for f in &a.answers {
        *findings.entry(serde_label(&f.kind)).or_default() += 1;
    }
    gauges(
        enc,
        "mhpscope_findings",
        "Answers that need attention, by kind (offline_failed, never_onlined, headroom, ...)",
        None,
        findings
            .into_iter()
            .map(|(k, v)| (vec![("kind", k)], v))
            .collect(),
    )?;

    let mut taken: BTreeMap<String, u64> = BTreeMap::new();
    let mut share: Vec<(Labels, u64)> = Vec::new();
    if let Some(h) = a
        .headroom
        .iter()
        .rev()
        .find(|h| h.by_node.iter().any(|n| n.share_of_free.is_some()))
    {
        for n in &h.by_node {
            if let Some(s) = n.share_of_free {
                share.push((vec![("source_node", node(n.node))], (s * 1e4).round() as u64));
            }
        }
    }
    for h in &a.headroom {
        for n in &h.by_node {
            *taken.entry(node(n.node)).or_default() += n.taken_bytes;
        }
    }
    gauges(
        enc,
        "mhpscope_last_hot_add_free_share_basis_points",
        "Share of the source node's free memory the latest hot-add's memmap took, in 1/10000",
        None,
        share,
    )?;
    gauges(
        enc,
        "mhpscope_config_info",
        "Always 1: the hotplug configuration in force; warn=1 where it commonly surprises (memory left offline, memmap from existing memory)",
        None,
        a.config
            .iter()
            .map(|c| {
                (
                    vec![
                        ("key", serde_label(&c.key)),
                        ("value", c.value.clone()),
                        ("warn", u8::from(c.warn).to_string()),
                    ],
                    1,
                )
            })
            .collect(),
    )
}

/// An enum's serde name, as a label value.
fn serde_label<T: serde::Serialize>(v: &T) -> String {
    crate::views::answers::serde_name(v).unwrap_or_else(|| "unknown".into())
}

fn write_nodes(model: &Model, enc: &mut DescriptorEncoder) -> fmt::Result {
    let mut inits = Vec::new();
    let mut ops = Vec::new();
    for (&n, stats) in &model.nodes {
        for (kind, d) in [("ram", &stats.memmap_init), ("zone_device", &stats.device_init)] {
            inits.push((vec![("node", node(n)), ("kind", kind.into())], Hist::of(d)));
        }
        for (op, d) in [("online", &stats.online), ("offline", &stats.offline)] {
            ops.push((vec![("node", node(n)), ("op", op.into())], Hist::of(d)));
        }
    }
    histograms(
        enc,
        "mhpscope_memmap_init_duration",
        "Memmap initialisation time per call: hotplugged RAM (memmap_init_range, or its caller) \
         and ZONE_DEVICE (memmap_init_zone_device, or memremap_pages)",
        inits,
    )?;
    histograms(
        enc,
        "mhpscope_operation_duration",
        "Time of successful online_pages and offline_pages calls",
        ops,
    )?;

    let mut counts: BTreeMap<(&str, &str, String), u64> = BTreeMap::new();
    for &n in model.nodes.keys() {
        for kind in [OpKind::Add, OpKind::Online, OpKind::Offline, OpKind::Remove] {
            for result in ["ok", "error"] {
                counts.insert((op_name(kind), result, node(n)), 0);
            }
        }
    }
    for (&(kind, ok, n), &v) in &model.op_counts {
        let result = if ok { "ok" } else { "error" };
        *counts.entry((op_name(kind), result, node_opt(n))).or_default() += v;
    }
    counters(
        enc,
        "mhpscope_operations",
        "Hotplug operations (add_memory_resource, online_pages, offline_pages, try_remove_memory) by result",
        None,
        counts
            .into_iter()
            .map(|((op, result, n), v)| (vec![("op", op.into()), ("result", result.into()), ("node", n)], v))
            .collect(),
    )?;

    // Memory taken from existing memory for the memmap of each hot-add, by the node it came from.
    let mut allocs: BTreeMap<(String, String), u64> = BTreeMap::new();
    for &n in model.nodes.keys() {
        for &src in model.nodes.keys() {
            allocs.insert((node(n), node(src)), 0);
        }
    }
    for h in &model.hot_adds {
        for (&src, &bytes) in h.allocs.iter().flat_map(|a| &a.by_node) {
            *allocs.entry((node(h.node), node(src))).or_default() += bytes;
        }
    }
    counters(
        enc,
        "mhpscope_memmap_alloc",
        "Memory allocated from existing memory for hot-added memmaps (kmem:mm_page_alloc inside \
         __add_pages): node is the hot-added range's, source_node where the memory came from",
        Some(Unit::Bytes),
        allocs
            .into_iter()
            .map(|((n, src), v)| (vec![("node", n), ("source_node", src)], v))
            .collect(),
    )
}

fn write_blocks(model: &Model, enc: &mut DescriptorEncoder) -> fmt::Result {
    let l = &model.layout;
    let mut vmemmap: BTreeMap<(String, &str), u64> = BTreeMap::new();
    for &n in model.nodes.keys() {
        for p in [
            Placement::SelfHosted,
            Placement::ExistingMemory,
            Placement::Unknown,
        ] {
            vmemmap.insert((node(n), placement_name(p)), 0);
        }
    }
    let mut blocks: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for b in model.blocks.iter() {
        let n = node_opt(b.node);
        if b.state != BlockState::Removed {
            *vmemmap
                .entry((n.clone(), placement_name(b.placement)))
                .or_default() += b.vmemmap_pages * l.page_size;
        }
        let zone = b.zone.map_or_else(|| "none".into(), |z| l.zone_name(z));
        *blocks.entry((n, zone, b.state.as_str().into())).or_default() += 1;
    }
    gauges(
        enc,
        "mhpscope_vmemmap",
        "Memmap (struct page array) of the memory blocks present now, by where it lives: in the \
         block itself, in memory that existed before, or unknown (present before tracing began)",
        Some(Unit::Bytes),
        vmemmap
            .into_iter()
            .map(|((n, p), v)| (vec![("node", n), ("placement", p.into())], v))
            .collect(),
    )?;
    gauges(
        enc,
        "mhpscope_memory_blocks",
        "Memory blocks by node, zone (last onlined to; none if never) and state",
        None,
        blocks
            .into_iter()
            .map(|((n, zone, state), v)| (vec![("node", n), ("zone", zone), ("state", state)], v))
            .collect(),
    )
}

fn write_zones(model: &Model, enc: &mut DescriptorEncoder) -> fmt::Result {
    let l = &model.layout;
    let page = l.page_size;
    let labels = |id: &ZoneId| -> Labels { vec![("node", node(id.node)), ("zone", l.zone_name(id.zone))] };
    let per_zone = |f: &dyn Fn(&ZoneState) -> Option<u64>| -> Vec<(Labels, u64)> {
        model
            .zones
            .iter()
            .filter_map(|(id, z)| f(z).map(|v| (labels(id), v)))
            .collect()
    };
    let pages = Some(Unit::Other("pages".into()));
    gauges(
        enc,
        "mhpscope_zone_spanned",
        "Pages the zone spans (zone->spanned_pages), holes included",
        pages.clone(),
        per_zone(&|z| Some(z.span.spanned_pages)),
    )?;
    gauges(
        enc,
        "mhpscope_zone_start_pfn",
        "First pfn of the zone span (zone->zone_start_pfn)",
        None,
        per_zone(&|z| Some(z.span.start_pfn)),
    )?;
    gauges(
        enc,
        "mhpscope_zone_present",
        "Pages present in the zone (/proc/zoneinfo; updated by the frames read at start and end)",
        pages.clone(),
        per_zone(&|z| z.present),
    )?;
    gauges(
        enc,
        "mhpscope_zone_managed",
        "Pages managed by the buddy allocator in the zone (/proc/zoneinfo, start and end frames)",
        pages,
        per_zone(&|z| z.managed),
    )?;
    gauges(
        enc,
        "mhpscope_zone_spanned",
        "The zone span in bytes (spanned pages times the page size)",
        Some(Unit::Bytes),
        per_zone(&|z| Some(z.span.spanned_pages * page)),
    )?;
    gauges(
        enc,
        "mhpscope_zone_present",
        "Present pages of the zone in bytes",
        Some(Unit::Bytes),
        per_zone(&|z| z.present.map(|p| p * page)),
    )?;
    gauges(
        enc,
        "mhpscope_zone_contiguous",
        "zone->contiguous as last set by set_zone_contiguous (absent until seen)",
        None,
        per_zone(&|z| z.contiguous.map(u64::from)),
    )?;
    counters(
        enc,
        "mhpscope_zone_span_changes",
        "Changes of the zone span (move_pfn_range_to_zone, remove_pfn_range_from_zone)",
        None,
        per_zone(&|z| Some(z.span_changes.seen())),
    )?;
    counters(
        enc,
        "mhpscope_zone_contiguity_changes",
        "Changes of zone->contiguous",
        None,
        per_zone(&|z| Some(z.contiguity_changes.seen())),
    )?;
    counters(
        enc,
        "mhpscope_pageblock_slowpath_calls",
        "Slow-path __pageblock_pfn_to_page calls (the zone is not contiguous): compaction and \
         isolation pay for them",
        None,
        // Not exported at all when not counted: no series rather than a false 0.
        per_zone(&|z| model.slowpath_counted.then(|| z.slowpath_calls())),
    )?;

    let mut findings: BTreeMap<(ZoneId, &str), u64> = BTreeMap::new();
    for &id in model.zones.keys() {
        for check in CHECKS {
            findings.insert((id, check_name(check)), 0);
        }
    }
    for (&(zone, check), &v) in &model.finding_counts {
        *findings.entry((zone, check_name(check))).or_default() += v;
    }
    counters(
        enc,
        "mhpscope_span_findings",
        "Zone span check findings (outside_span, overlap, unaligned_shrink: the span is wrong; \
         became_empty: informational)",
        None,
        findings
            .into_iter()
            .map(|((id, check), v)| {
                let mut l = labels(&id);
                l.push(("check", check.into()));
                (l, v)
            })
            .collect(),
    )
}

fn node(n: i32) -> String {
    if n < 0 {
        "unknown".into()
    } else {
        n.to_string()
    }
}

fn node_opt(n: Option<i32>) -> String {
    n.map_or_else(|| "unknown".into(), node)
}

fn op_name(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Add => "add",
        OpKind::Online => "online",
        OpKind::Offline => "offline",
        OpKind::Remove => "remove",
    }
}

fn placement_name(p: Placement) -> &'static str {
    match p {
        Placement::SelfHosted => "self_hosted",
        Placement::ExistingMemory => "existing_memory",
        Placement::Unknown => "unknown",
    }
}

const CHECKS: [Check; 4] = [
    Check::OutsideSpan,
    Check::Overlap,
    Check::UnalignedShrink,
    Check::BecameEmpty,
];

fn check_name(c: Check) -> &'static str {
    match c {
        Check::OutsideSpan => "outside_span",
        Check::Overlap => "overlap",
        Check::UnalignedShrink => "unaligned_shrink",
        Check::BecameEmpty => "became_empty",
    }
}

/// A histogram of durations: per-bucket (not cumulative) counts, the last bucket +Inf.
struct Hist {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl Hist {
    /// The sum is the exact total; the buckets come from the histogram (within 0.1%).
    fn of(d: &Durations) -> Hist {
        let mut h = Hist::of_counts(d.recorded());
        h.sum = d.summary().total_ns as f64 / 1e9;
        h
    }

    fn of_samples(samples_ns: &[u64]) -> Hist {
        Hist::of_counts(samples_ns.iter().map(|&ns| (ns, 1)))
    }

    fn of_counts(values: impl Iterator<Item = (u64, u64)>) -> Hist {
        let mut buckets: Vec<(f64, u64)> = duration_buckets().into_iter().map(|le| (le, 0)).collect();
        buckets.push((f64::INFINITY, 0));
        let (mut sum, mut count) = (0.0, 0);
        for (ns, n) in values {
            let secs = ns as f64 / 1e9;
            sum += secs * n as f64;
            count += n;
            if let Some(b) = buckets.iter_mut().find(|b| secs <= b.0) {
                b.1 += n;
            }
        }
        Hist { sum, count, buckets }
    }
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let c = ConstCounter::new(value);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let g = ConstGauge::new(value);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A counter family; prometheus-client appends the unit and `_total` to `name`.
fn counters(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    rows: Vec<(Labels, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit.as_ref(), MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge family; prometheus-client appends the unit to `name`.
fn gauges(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    rows: Vec<(Labels, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A histogram family in seconds (prometheus-client 0.25 has no constant histogram type, but
/// its encoder takes the sum, count and buckets directly).
fn histograms(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: Vec<(Labels, Hist)>) -> fmt::Result {
    let unit = Unit::Seconds;
    let mut m = enc.encode_descriptor(name, help, Some(&unit), MetricType::Histogram)?;
    for (labels, h) in rows {
        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
            h.sum,
            h.count,
            &h.buckets,
            None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{
        recording::stream::Update,
        recording::{Item, Reader},
        views::report::Document,
    };

    const FIXTURES: [&str; 3] = ["hotplug-6.1.ndjson", "offnode-6.12.ndjson", "devdax-7.2.ndjson"];

    /// A fixture recording applied whole, the way `serve` would end up with it.
    fn stream_of(name: &str, keep_events: Option<usize>) -> Stream {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        let mut reader = Reader::open(&path).unwrap();
        let mut s = Stream::new(name);
        s.apply(Update::Header(Box::new(reader.header().unwrap())));
        let mut events = 0;
        while let Some(item) = reader.next_item().unwrap() {
            match item {
                Item::Event(e) if keep_events.is_none_or(|k| events < k) => {
                    events += 1;
                    s.apply(Update::Event(e));
                }
                Item::Event(_) => {}
                Item::Summary(x) if keep_events.is_none() => s.apply(Update::Summary(Box::new(x))),
                Item::Summary(_) => s.apply(Update::Failed(crate::recording::stream::Failure::other(
                    "truncated",
                ))),
            }
        }
        s
    }

    struct Sample {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }

    fn scrape(s: Stream) -> (String, Vec<Sample>) {
        let text = encode(&registry(Arc::new(Mutex::new(s)), Thresholds::default())).unwrap();
        let samples = text.lines().filter(|l| !l.starts_with('#')).map(parse).collect();
        (text, samples)
    }

    /// `name{k="v",...} value`, with the text format's escapes in label values.
    fn parse(line: &str) -> Sample {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, mut rest) = series.split_once('{').unwrap_or((series, ""));
        let mut labels = BTreeMap::new();
        while let Some((key, after)) = rest.split_once("=\"") {
            let mut val = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().unwrap() {
                    (_, '\\') => match chars.next().unwrap().1 {
                        'n' => val.push('\n'),
                        c => val.push(c),
                    },
                    (i, '"') => break i,
                    (_, c) => val.push(c),
                }
            };
            labels.insert(key.trim_start_matches(',').to_string(), val);
            rest = &after[end + 1..];
        }
        Sample {
            name: name.to_string(),
            labels,
            value: value.parse().unwrap(),
        }
    }

    /// Sum of the samples of `name` whose labels include `want`.
    fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
        samples
            .iter()
            .filter(|s| s.name == name && want.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v)))
            .map(|s| s.value)
            .sum()
    }

    fn document(name: &str) -> Document {
        Document::of_stream(&stream_of(name, None), Thresholds::default()).unwrap()
    }

    /// What the lab scenario of a fixture did, written down once from its plan and the kernel
    /// (xtask's scenario table; 64-byte struct pages, 128 MiB blocks), not from any view.
    struct Truth {
        fixture: &'static str,
        /// (op, successful calls) over all nodes.
        ops: &'static [(&'static str, f64)],
        /// (node, successful onlines) per node.
        onlines: &'static [(&'static str, f64)],
        /// (node, memmap init calls on hotplugged RAM).
        ram_inits: &'static [(&'static str, f64)],
        /// (node, source node, memmap bytes allocated from existing memory).
        memmap: &'static [(&'static str, &'static str, f64)],
    }

    const MIB: f64 = (1 << 20) as f64;

    const TRUTHS: [Truth; 2] = [
        // hotplug on 6.1, memmap_on_memory=1: d1 (128 MiB, one block) and d2 (256 MiB, two
        // blocks) on node 1, each block onlined and offlined once, both unplugged. 6.1
        // self-hosts only a range of exactly one block: d1's memmap is on d1 (one init of its
        // own besides its online), d2's 2 x 2 MiB come from node 1's memory.
        Truth {
            fixture: "hotplug-6.1.ndjson",
            ops: &[("add", 2.0), ("online", 3.0), ("offline", 3.0), ("remove", 2.0)],
            onlines: &[("0", 0.0), ("1", 3.0)],
            ram_inits: &[("1", 4.0)],
            memmap: &[("1", "1", 4.0 * MIB)],
        },
        // offnode on 6.12, memmap_on_memory=0: d1 (256 MiB) on node 1 and d2 (256 MiB) on
        // memoryless node 2, their 2 + 2 blocks onlined and offlined once, both unplugged.
        // Node 2's memmap came from node 0, its first fallback in the guest's boot log.
        Truth {
            fixture: "offnode-6.12.ndjson",
            ops: &[("add", 2.0), ("online", 4.0), ("offline", 4.0), ("remove", 2.0)],
            onlines: &[("0", 0.0), ("1", 2.0), ("2", 2.0)],
            ram_inits: &[("1", 2.0), ("2", 2.0)],
            memmap: &[("1", "1", 4.0 * MIB), ("2", "0", 4.0 * MIB)],
        },
    ];

    #[test]
    fn operations_and_memmap_are_what_the_scenarios_did() {
        for t in &TRUTHS {
            let f = t.fixture;
            let (_, m) = scrape(stream_of(f, None));
            for &(op, n) in t.ops {
                let ok = [("op", op), ("result", "ok")];
                assert_eq!(sum(&m, "mhpscope_operations_total", &ok), n, "{f} {op}");
                assert_eq!(
                    sum(&m, "mhpscope_operations_total", &[("op", op)]),
                    n,
                    "{f} {op}: none failed"
                );
            }
            for &(node, n) in t.onlines {
                let want = [("op", "online"), ("result", "ok"), ("node", node)];
                assert_eq!(sum(&m, "mhpscope_operations_total", &want), n, "{f} node {node}");
                let count = [("node", node), ("op", "online")];
                assert_eq!(
                    sum(&m, "mhpscope_operation_duration_seconds_count", &count),
                    n,
                    "{f} node {node}"
                );
            }
            for &(node, n) in t.ram_inits {
                let want = [("node", node), ("kind", "ram")];
                assert_eq!(
                    sum(&m, "mhpscope_memmap_init_duration_seconds_count", &want),
                    n,
                    "{f} node {node}"
                );
            }
            let mut total = 0.0;
            for &(node, source, bytes) in t.memmap {
                let want = [("node", node), ("source_node", source)];
                assert_eq!(
                    sum(&m, "mhpscope_memmap_alloc_bytes_total", &want),
                    bytes,
                    "{f} node {node} from {source}"
                );
                total += bytes;
            }
            assert_eq!(sum(&m, "mhpscope_memmap_alloc_bytes_total", &[]), total, "{f}");
            // Everything was unplugged: no block left, so no memmap held.
            assert_eq!(sum(&m, "mhpscope_vmemmap_bytes", &[]), 0.0, "{f}");
        }
    }

    #[test]
    fn memmap_init_histograms_match_the_report() {
        let mut seen = (0, 0);
        for f in FIXTURES {
            let (doc, (_, m)) = (document(f), scrape(stream_of(f, None)));
            for n in &doc.nodes {
                let node = n.node.to_string();
                for (kind, summary) in [("ram", &n.memmap_init), ("zone_device", &n.device_init)] {
                    let want = [("node", node.as_str()), ("kind", kind)];
                    let name = "mhpscope_memmap_init_duration_seconds";
                    let count = sum(&m, &format!("{name}_count"), &want);
                    assert_eq!(count, summary.count as f64, "{f} node {node} {kind}");
                    let inf = [want[0], want[1], ("le", "+Inf")];
                    assert_eq!(sum(&m, &format!("{name}_bucket"), &inf), count);
                    let secs = sum(&m, &format!("{name}_sum"), &want);
                    assert!((secs - summary.total_ns as f64 / 1e9).abs() < 1e-9, "{f} {secs}");
                    // Cumulative buckets: the one at or above the median holds at least half of
                    // the samples, the one at or above the maximum holds them all.
                    let le_of = |ns: u64| duration_buckets().into_iter().find(|&le| ns as f64 / 1e9 <= le);
                    if let (Some(p50), Some(max)) = (le_of(summary.p50_ns), le_of(summary.max_ns)) {
                        let bucket = |le: f64| {
                            m.iter()
                                .filter(|s| s.name == format!("{name}_bucket"))
                                .filter(|s| want.iter().all(|(k, v)| s.labels[*k] == *v))
                                .find(|s| s.labels["le"].parse::<f64>() == Ok(le))
                                .map(|s| s.value)
                                .unwrap()
                        };
                        assert!(bucket(p50) * 2.0 >= count, "{f} {kind} p50 bucket {p50}");
                        assert_eq!(bucket(max), count, "{f} {kind} max bucket {max}");
                    }
                    if summary.count > 0 {
                        match kind {
                            "ram" => seen.0 += 1,
                            _ => seen.1 += 1,
                        }
                    }
                }
            }
        }
        assert!(
            seen.0 > 0 && seen.1 > 0,
            "the fixtures have RAM and ZONE_DEVICE inits"
        );
    }

    #[test]
    fn zones_match_the_report() {
        for f in FIXTURES {
            let (doc, (_, m)) = (document(f), scrape(stream_of(f, None)));
            for z in &doc.zones {
                let node = z.node.to_string();
                let want = [("node", node.as_str()), ("zone", z.zone.as_str())];
                let get = |name: &str| sum(&m, name, &want);
                assert_eq!(get("mhpscope_zone_spanned_pages"), z.spanned_pages as f64);
                assert_eq!(get("mhpscope_zone_start_pfn"), z.start_pfn as f64);
                assert_eq!(
                    get("mhpscope_zone_spanned_bytes"),
                    (z.spanned_pages * doc.page_size) as f64
                );
                assert_eq!(
                    get("mhpscope_zone_present_pages"),
                    z.present_pages.unwrap_or(0) as f64
                );
                assert_eq!(
                    get("mhpscope_zone_managed_pages"),
                    z.managed_pages.unwrap_or(0) as f64
                );
                let contiguous = m.iter().find(|s| {
                    s.name == "mhpscope_zone_contiguous" && want.iter().all(|(k, v)| s.labels[*k] == *v)
                });
                assert_eq!(contiguous.map(|s| s.value == 1.0), z.contiguous, "{f} {want:?}");
                assert_eq!(
                    get("mhpscope_zone_span_changes_total"),
                    z.span_changes.len() as f64
                );
                assert_eq!(
                    get("mhpscope_zone_contiguity_changes_total"),
                    z.contiguity_changes.len() as f64
                );
                let slowpath = m.iter().find(|s| {
                    s.name == "mhpscope_pageblock_slowpath_calls_total"
                        && want.iter().all(|(k, v)| s.labels[*k] == *v)
                });
                assert_eq!(slowpath.map(|s| s.value as u64), z.slowpath_calls, "{f} {want:?}");
            }
            assert_eq!(
                sum(&m, "mhpscope_span_findings_total", &[]),
                doc.span_findings.len() as f64
            );
            for x in &doc.span_findings {
                let want = [
                    ("zone", x.zone_name.as_str()),
                    ("check", check_name(x.finding.check)),
                ];
                assert!(sum(&m, "mhpscope_span_findings_total", &want) >= 1.0);
            }
        }
    }

    #[test]
    fn source_health_and_info() {
        for f in FIXTURES {
            let (doc, (text, m)) = (document(f), scrape(stream_of(f, None)));
            assert!(text.ends_with("# EOF\n"));
            assert_eq!(sum(&m, "mhpscope_stream_ended", &[]), 1.0);
            assert_eq!(sum(&m, "mhpscope_events_total", &[]), doc.events as f64);
            assert_eq!(sum(&m, "mhpscope_lost_events_total", &[]), doc.lost_events as f64);
            assert_eq!(
                sum(&m, "mhpscope_undecodable_events_total", &[]),
                doc.undecodable_events as f64
            );
            let attached = doc.probes.iter().filter(|p| p.attached).count();
            assert_eq!(sum(&m, "mhpscope_probe_attached", &[]), attached as f64);
            assert_eq!(
                m.iter().filter(|s| s.name == "mhpscope_probe_attached").count(),
                doc.probes.len()
            );
            let info = [("kernel_release", doc.kernel_release.as_str()), ("origin", f)];
            assert_eq!(sum(&m, "mhpscope_info", &info), 1.0);
            // Every counter sample is named *_total, as OpenMetrics wants.
            for line in text
                .lines()
                .filter(|l| l.starts_with("# TYPE ") && l.ends_with(" counter"))
            {
                let name = line.split(' ').nth(2).unwrap();
                assert!(m
                    .iter()
                    .filter(|s| s.name.starts_with(name))
                    .all(|s| s.name == format!("{name}_total")));
            }
        }
    }

    #[test]
    fn probe_costs_are_the_latest_sample() {
        let mut s = stream_of("hotplug-6.1.ndjson", None);
        for (runs, ns) in [(10, 5_000), (24, 12_000)] {
            s.apply(Update::Event(crate::model::event::Event {
                ts_ns: s.last_ts_ns + 1,
                duration_ns: 0,
                tid: 0,
                op: crate::model::event::Op::ProbeCostSample {
                    probe: "online_pages".into(),
                    runs,
                    run_time_ns: ns,
                },
            }));
        }
        let (_, m) = scrape(s);
        let probe = [("probe", "online_pages")];
        assert_eq!(sum(&m, "mhpscope_probe_runs_total", &probe), 24.0);
        assert_eq!(sum(&m, "mhpscope_probe_run_time_seconds_total", &probe), 12e-6);
    }

    #[test]
    fn a_failed_stream_keeps_what_it_had() {
        let (_, m) = scrape(stream_of("hotplug-6.1.ndjson", Some(10)));
        assert_eq!(sum(&m, "mhpscope_stream_ended", &[]), 2.0);
        assert_eq!(sum(&m, "mhpscope_events_total", &[]), 10.0);
        assert!(sum(&m, "mhpscope_zone_spanned_pages", &[]) > 0.0);
    }

    #[test]
    fn before_the_header_only_the_status_is_known() {
        let (text, m) = scrape(Stream::new("live"));
        assert_eq!(sum(&m, "mhpscope_stream_ended", &[]), 0.0);
        assert_eq!(sum(&m, "mhpscope_info", &[("kernel_release", "unknown")]), 1.0);
        assert!(!text.contains("mhpscope_operations"));
    }
}
