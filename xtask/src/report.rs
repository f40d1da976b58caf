//! The parts of `mhpscope report --json` the checks read. Unknown fields are ignored and most
//! fields are optional, so a changed report fails a check instead of the parse.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Report {
    pub schema_version: Option<u64>,
    pub kernel_release: Option<String>,
    pub block_size_bytes: Option<u64>,
    pub page_size: Option<u64>,
    pub struct_page_size: Option<u64>,
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
    #[serde(default)]
    pub blocks: Vec<Block>,
    #[serde(default)]
    pub zones: Vec<Zone>,
}

#[derive(Debug, Deserialize)]
pub struct Probe {
    pub name: String,
    pub function: Option<String>,
    pub attached: bool,
    pub reason: Option<String>,
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

#[derive(Debug, Deserialize)]
pub struct Block {
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

#[derive(Debug, Deserialize)]
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
