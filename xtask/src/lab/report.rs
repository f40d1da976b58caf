//! The parts of `mhpscope report --json` the checks read. Unknown fields are ignored and most
//! fields are optional, so a changed report fails a check instead of the parse.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Report {
    pub schema_version: Option<u64>,
    pub kernel_release: Option<String>,
    pub block_size_bytes: Option<u64>,
    pub events: Option<u64>,
    pub lost_events: Option<u64>,
    #[serde(default)]
    pub probes: Vec<Probe>,
    #[serde(default)]
    pub hot_adds: Vec<HotAdd>,
    #[serde(default)]
    pub removes: Vec<Remove>,
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// One entry per block, expanded from the report's ranges.
    #[serde(default, deserialize_with = "block_ranges")]
    pub blocks: Vec<Block>,
    #[serde(default)]
    pub zones: Vec<Zone>,
    #[serde(default)]
    pub memmap_placements: Vec<Placement>,
    #[serde(default)]
    pub span_findings: Vec<Finding>,
    #[serde(default)]
    pub ram_init_bursts: Vec<Burst>,
    #[serde(default)]
    pub device_init_bursts: Vec<Burst>,
    #[serde(default)]
    pub device_ranges: Vec<Device>,
    #[serde(default)]
    pub probe_costs: Vec<ProbeCost>,
    /// Schema version 2 and later.
    pub answers: Option<Answers>,
    /// Free page reporting (absent without a registered device or its probes).
    pub reporting: Option<Reporting>,
}

#[derive(Debug, Deserialize)]
pub struct Reporting {
    pub cycles: Durations,
    #[serde(default)]
    pub cycles_without_totals: u64,
    pub reports: u64,
    #[serde(default)]
    pub reports_failed: u64,
    pub reported_bytes: u64,
    #[serde(default)]
    pub reports_without_zone: u64,
    #[serde(default)]
    pub reports_unseen_cycle: u64,
    pub order_param: Option<i64>,
    #[serde(default)]
    pub zones: Vec<ReportingZone>,
}

#[derive(Debug, Deserialize)]
pub struct Durations {
    pub count: u64,
}

#[derive(Debug, Deserialize)]
pub struct ReportingZone {
    pub node: i64,
    pub zone: String,
    pub reports: u64,
    pub reported_bytes: u64,
    #[serde(default)]
    pub reported_bytes_unseen_cycle: u64,
    #[serde(default)]
    pub isolated_bytes: u64,
    #[serde(default)]
    pub orders: Vec<ReportingOrder>,
    pub present_pages: Option<u64>,
    #[serde(default)]
    pub hot_added_blocks: u64,
}

#[derive(Debug, Deserialize)]
pub struct ReportingOrder {
    pub order: u8,
    pub isolated_blocks: u64,
    #[serde(default)]
    pub putback_blocks: u64,
}

#[derive(Debug, Deserialize)]
pub struct ProbeCost {
    pub probe: String,
    pub runs: u64,
    pub avg_ns: u64,
}

#[derive(Debug, Deserialize)]
pub struct Placement {
    pub node: i64,
    pub start: u64,
    pub size: u64,
    #[serde(default)]
    pub self_hosted: bool,
    pub allocated: Option<Allocated>,
    #[serde(default)]
    pub off_node: Vec<i64>,
}

#[derive(Debug, Deserialize)]
pub struct Allocated {
    pub huge_bytes: u64,
    #[serde(default)]
    pub by_node: Vec<NodeBytes>,
}

#[derive(Debug, Deserialize)]
pub struct NodeBytes {
    pub node: i64,
    pub bytes: u64,
}

#[derive(Debug, Deserialize)]
pub struct Finding {
    pub zone: ZoneId,
    pub check: String,
    pub cause: String,
    pub pfns: (u64, u64),
}

#[derive(Debug, Deserialize)]
pub struct ZoneId {
    pub node: i64,
    pub zone: u64,
}

#[derive(Debug, Deserialize)]
pub struct Burst {
    pub inits: u64,
    #[serde(default)]
    pub nodes: Vec<i64>,
    pub busy_ns: u64,
    pub wall_ns: u64,
    pub concurrency: f64,
    pub max_overlap: u64,
}

#[derive(Debug, Deserialize)]
pub struct Device {
    pub node: i64,
    pub start: u64,
    pub end: u64,
    pub pgmap_type: String,
    pub altmap: bool,
    pub ret: i64,
    #[serde(default)]
    pub inits: Vec<DeviceInit>,
    pub removed_ns: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct DeviceInit {
    pub node: i64,
    pub zone: String,
    pub pfn: u64,
    pub nr_pages: u64,
    pub duration_ns: u64,
}

#[derive(Debug, Deserialize)]
pub struct Probe {
    pub name: String,
    pub function: Option<String>,
    pub attached: bool,
    pub method: Option<String>,
    pub reason: Option<String>,
    #[serde(default)]
    pub tried: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct HotAdd {
    pub start: u64,
    pub size: u64,
    pub node: Option<i64>,
    pub ret: i64,
}

#[derive(Debug, Deserialize)]
pub struct Remove {
    pub start: u64,
    pub size: u64,
    pub ret: i64,
}

#[derive(Debug, Deserialize)]
pub struct Node {
    pub node: i64,
    #[serde(default)]
    pub hot_adds: u64,
    #[serde(default)]
    pub onlines: u64,
    #[serde(default)]
    pub offlines: u64,
    #[serde(default)]
    pub removes: u64,
    pub memmap_init: Option<Stat>,
    pub device_init: Option<Stat>,
    pub online: Option<Stat>,
    pub offline: Option<Stat>,
}

#[derive(Debug, Deserialize)]
pub struct Stat {
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub total_ns: u64,
    #[serde(default)]
    pub pages: u64,
}

/// The report lists ranges of alike blocks (`first`, `count`): the checks want each block.
fn block_ranges<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Block>, D::Error> {
    #[derive(Deserialize)]
    struct Range {
        first: u64,
        count: u64,
        #[serde(flatten)]
        block: Block,
    }
    let ranges = Vec::<Range>::deserialize(d)?;
    Ok(ranges
        .into_iter()
        .flat_map(|r| {
            (r.first..r.first + r.count).map(move |id| Block {
                id,
                ..r.block.clone()
            })
        })
        .collect())
}

#[derive(Debug, Clone, Deserialize)]
pub struct Block {
    /// Set from the range.
    #[serde(skip)]
    pub id: u64,
    pub node: Option<i64>,
    pub zone: Option<String>,
    pub state: Option<String>,
    #[serde(default)]
    pub hot_added: bool,
    #[serde(default)]
    pub onlined: u64,
    #[serde(default)]
    pub offlined: u64,
    pub vmemmap: Option<Vmemmap>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Vmemmap {
    pub placement: Option<String>,
    #[serde(default)]
    pub pages: u64,
}

#[derive(Debug, Deserialize)]
pub struct Zone {
    pub node: i64,
    pub zone: String,
    pub start_pfn: Option<u64>,
    pub spanned_pages: Option<u64>,
    #[serde(default)]
    pub span_changes: Vec<SpanChange>,
    #[serde(default)]
    pub contiguity_changes: Vec<serde_json::Value>,
    /// Null when not counted (the probe is off unless `--with pageblock_pfn_to_page`).
    #[serde(default)]
    pub slowpath_calls: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct SpanChange {
    pub before: Span,
    pub after: Span,
}

#[derive(Debug, Deserialize)]
pub struct Span {
    pub start_pfn: u64,
    pub spanned_pages: u64,
}

/// `answers`: why each online/offline failed, readiness, headroom, the configuration audit.
#[derive(Debug, Default, Deserialize)]
pub struct Answers {
    #[serde(default)]
    pub answers: Vec<Answer>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub readiness: Vec<Readiness>,
    #[serde(default)]
    pub headroom: Vec<Headroom>,
    #[serde(default)]
    pub config: Vec<ConfigItem>,
}

#[derive(Debug, Deserialize)]
pub struct Answer {
    pub ts_ns: u64,
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Attempt {
    pub ts_ns: u64,
    pub kind: String,
    pub block: Option<u64>,
    pub start_pfn: Option<u64>,
    pub nr_pages: Option<u64>,
    pub node: Option<i64>,
    pub zone: Option<String>,
    pub requested: Option<String>,
    #[serde(default)]
    pub auto_online: bool,
    pub policy: Option<String>,
    pub ret: i64,
    #[serde(default)]
    pub errno: String,
    pub reason: Option<String>,
    pub reason_words: Option<String>,
    pub blocking_page: Option<BlockingPage>,
    pub migration: Option<Migration>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BlockingPage {
    pub pfn: u64,
    pub flags_raw: Option<u64>,
    pub flags: Option<Vec<String>>,
    pub page_type: Option<String>,
    pub node: Option<u32>,
    pub zone: Option<String>,
    pub what: Option<String>,
    pub refcount: Option<i64>,
    pub mapcount: Option<i64>,
    pub dump_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Migration {
    #[serde(default)]
    pub succeeded: u64,
}

#[derive(Debug, Deserialize)]
pub struct Readiness {
    pub ts_ns: u64,
    pub node: i64,
    pub start_pfn: u64,
    pub nr_pages: u64,
    #[serde(default)]
    pub blocks: Vec<BlockReadiness>,
    #[serde(default)]
    pub offline_blocks: u64,
}

#[derive(Debug, Deserialize)]
pub struct BlockReadiness {
    pub block: u64,
    pub online_after_ns: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Headroom {
    pub ts_ns: u64,
    pub node: i64,
    pub start_pfn: u64,
    pub nr_pages: u64,
    pub ret: i64,
    #[serde(default)]
    pub by_node: Vec<NodeHeadroom>,
}

#[derive(Debug, Deserialize)]
pub struct NodeHeadroom {
    pub node: i64,
    #[serde(default)]
    pub taken_bytes: u64,
    pub free_before_bytes: Option<u64>,
    pub free_after_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct ConfigItem {
    pub key: String,
    pub value: String,
}
