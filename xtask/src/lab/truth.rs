//! Ground truth of a lab run: what the scenario did (steps, QMP traffic, sysfs writes) and what
//! the guest's own files said (snapshots), parsed here independently of mhpscope's code.

use crate::vm::qmp::QmpRecord;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct GroundTruth {
    pub schema_version: u32,
    /// Scenario name (see scenario::PLANS).
    pub scenario: String,
    pub kernel: KernelInfo,
    /// `/sys/module/memory_hotplug/parameters/memmap_on_memory` in the guest.
    pub memmap_on_memory: Option<String>,
    /// Nodes with memory at boot (`/sys/devices/system/node/has_memory`).
    pub nodes_with_memory: Vec<i64>,
    /// "Fallback order for Node N: N a b" from the guest's boot log.
    pub fallback_order: BTreeMap<i64, Vec<i64>>,
    /// Whether each function of interest is in the guest's available_filter_functions (ftrace
    /// can trace it, so fentry/kprobe can attach).
    pub traceable: BTreeMap<String, bool>,
    /// Compaction runs (`/proc/sys/vm/compact_memory`), with /proc/vmstat before and after.
    pub compactions: Vec<Compaction>,
    /// devdax namespaces created with ndctl.
    pub devdax: Vec<DaxRun>,
    pub qemu_args: Vec<String>,
    pub steps: Vec<Step>,
    pub dimms: Vec<Dimm>,
    pub online_writes: Vec<StateWrite>,
    pub offline_writes: Vec<StateWrite>,
    pub qmp: Vec<QmpRecord>,
    pub qmp_events: Vec<serde_json::Value>,
    pub snapshots: Vec<Snapshot>,
    pub mhpscope: Option<MhpscopeRun>,
    /// Screens of `mhpscope top` running live in the guest (tmux capture-pane), by step.
    #[serde(default)]
    pub top_screens: Vec<TopScreen>,
    /// `mhpscope probes` run while the recorder still ran (its self-cost table).
    #[serde(default)]
    pub probes_at_end: Option<String>,
    /// Set when the scenario failed.
    pub error: Option<String>,
    /// Why the scenario was run a second time (a first guest stopped answering), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_after: Option<String>,
    /// What LOAD_BALLOON printed (virtio_balloon and its virtio dependencies, loaded in every
    /// scenario before the recorder starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balloon_modules: Option<String>,
    /// What the `reporting` scenario's guest ftrace and the host saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting: Option<ReportingTruth>,
    /// What the `failures` scenario provoked and what the guest said about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<crate::lab::failtruth::Failures>,
}

/// Free page reporting as the guest's ftrace and the host saw it (`reporting` scenario).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ReportingTruth {
    /// `/sys/module/page_reporting/parameters/page_reporting_order` at the start.
    pub order_param: Option<i64>,
    /// Cycles ftrace saw while the guest settled before the recorder started (the device's
    /// first full report after its registration), outside the compared window.
    pub settle_cycles: u64,
    /// Start of ftrace's compared window: the recording header's `clock.monotonic_ns` (ftrace
    /// runs with `trace_clock` mono; its window closes in the command that stops the recorder).
    pub window_start_ns: Option<u64>,
    /// Calls of `page_reporting_process` in ftrace's window.
    pub ftrace_cycles: Option<u64>,
    /// Calls of `virtballoon_free_page_report` in the same window.
    pub ftrace_reports: Option<u64>,
    /// Cycles and reports ftrace saw after it was switched on but before the window (while
    /// the recorder started), left out of the comparison.
    pub ftrace_before_window: Option<(u64, u64)>,
    /// Of the window's reports, those whose cycle (the latest `page_reporting_process` call
    /// of the same kworker) began before the window, or before ftrace was switched on.
    #[serde(default)]
    pub ftrace_reports_unseen_cycle: Option<u64>,
    /// Whether ftrace's ring buffer overran (then its counts are no ground truth).
    pub ftrace_overrun: Option<bool>,
    /// The host's side: qemu's RSS around each phase that freed memory in the guest.
    pub rss: Vec<RssPhase>,
    /// Bytes of the buffer each workload round touched and freed (`dd bs=...`).
    pub workload_bytes: u64,
}

/// qemu's VmRSS (host, KiB) once the guest's memory was touched (`high_kib`: after the
/// preallocated DIMM was plugged, or after dd filled its buffer and exited) and once reporting
/// had time to hand it back (`low_kib`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RssPhase {
    pub what: String,
    pub high_kib: u64,
    pub low_kib: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct KernelInfo {
    pub name: String,
    pub package: String,
    pub version: String,
    pub cmdline: String,
    /// `uname -r` in the guest.
    pub release: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub description: String,
    pub start_ms: f64,
    pub duration_ms: f64,
    pub ok: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dimm {
    pub id: String,
    pub memdev: String,
    pub size: u64,
    pub node: i64,
    pub added: bool,
    /// From `query-memory-devices`.
    pub addr: Option<u64>,
    pub slot: Option<i64>,
    /// Memory block ids that appeared in sysfs when this DIMM was added.
    pub blocks: Vec<u64>,
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Compaction {
    /// Guest milliseconds since the lab's epoch.
    pub start_ms: f64,
    pub vmstat_before: BTreeMap<String, u64>,
    pub vmstat_after: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaxRun {
    /// ndctl's --map: "dev" (memmap on the device) or "mem" (in RAM).
    pub map: String,
    /// `ndctl create-namespace` output (JSON) and exit code.
    pub ndctl: String,
    pub rc: i32,
    /// Top-level "Persistent Memory" range of /proc/iomem (inclusive) while it existed.
    pub pmem: Option<(u64, u64)>,
    /// Zone Device of the nvdimm's node in zoneinfo while it existed: (start_pfn, spanned).
    pub device_zone: Option<(Option<u64>, u64)>,
    pub destroyed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateWrite {
    pub block: u64,
    pub value: String,
    pub rc: i32,
    pub output: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MhpscopeRun {
    pub pid: Option<u64>,
    pub header: Option<String>,
    pub exit_code: Option<i32>,
    pub stderr: Option<String>,
    pub recording_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopScreen {
    /// After which step it was captured.
    pub after: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub name: String,
    pub raw: BTreeMap<String, RawItem>,
    pub parsed: Parsed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawItem {
    pub rc: i32,
    pub text: String,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Parsed {
    pub block_size_bytes: Option<u64>,
    pub blocks: Vec<Block>,
    pub zones: Vec<Zone>,
    /// kB values (page counts for the few unitless keys).
    pub meminfo: BTreeMap<String, u64>,
    /// Top-level "System RAM" ranges of /proc/iomem, inclusive.
    pub system_ram: Vec<(u64, u64)>,
    #[serde(default)]
    pub vmstat: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub id: u64,
    pub state: Option<String>,
    pub phys_index: Option<u64>,
    pub node: Option<i64>,
    pub valid_zones: Option<String>,
    /// Error text when reading valid_zones failed.
    pub valid_zones_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub node: i64,
    pub zone: String,
    /// Absent in zoneinfo for unpopulated zones.
    pub start_pfn: Option<u64>,
    pub spanned: u64,
    pub present: u64,
    pub managed: u64,
    /// `nr_free_pages` (the zone's NR_FREE_PAGES counter).
    #[serde(default)]
    pub free: Option<u64>,
    /// Sum over the CPUs of the zone's "vm stats threshold": how far its counters may lag the
    /// per-CPU deltas not yet folded in.
    #[serde(default)]
    pub stat_threshold: u64,
    /// Pages in the per-CPU lists ("count:", summed over CPUs): free, but not in nr_free_pages.
    #[serde(default)]
    pub pcp_count: u64,
    /// The per-CPU lists' "batch:" summed over CPUs: what one refill or drain moves.
    #[serde(default)]
    pub pcp_batch: u64,
}

impl GroundTruth {
    pub fn snapshot(&self, name: &str) -> Result<&Snapshot> {
        self.snapshots
            .iter()
            .find(|s| s.name == name)
            .with_context(|| format!("ground truth has no snapshot {name:?}"))
    }

    pub fn hot_added_blocks(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.dimms.iter().flat_map(|d| d.blocks.iter().copied()).collect();
        v.sort_unstable();
        v
    }
}

impl Parsed {
    pub fn block(&self, id: u64) -> Option<&Block> {
        self.blocks.iter().find(|b| b.id == id)
    }

    pub fn zone(&self, node: i64, zone: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.node == node && z.zone == zone)
    }

    pub fn block_ids(&self) -> Vec<u64> {
        self.blocks.iter().map(|b| b.id).collect()
    }
}

/// Splits the snapshot script's output into items.
pub fn parse_items(text: &str) -> Result<BTreeMap<String, RawItem>> {
    let mut items = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(head) = line.strip_prefix("@@ITEM ") else {
            if line.trim().is_empty() {
                continue;
            }
            bail!("snapshot: unexpected line {line:?}");
        };
        let (key, rc) = head.rsplit_once(' ').context("snapshot: bad @@ITEM line")?;
        let rc: i32 = rc.parse().context("snapshot: bad rc")?;
        let mut body: Vec<&str> = Vec::new();
        loop {
            match lines.next() {
                Some("@@ENDITEM") => break,
                Some(l) => body.push(l),
                None => bail!("snapshot: item {key} not terminated"),
            }
        }
        items.insert(
            key.to_string(),
            RawItem {
                rc,
                text: body.join("\n"),
            },
        );
    }
    Ok(items)
}

pub fn parse_snapshot(raw: &BTreeMap<String, RawItem>) -> Result<Parsed> {
    let ok = |k: &str| raw.get(k).filter(|i| i.rc == 0).map(|i| i.text.as_str());
    let mut p = Parsed {
        block_size_bytes: ok("file:/sys/devices/system/memory/block_size_bytes")
            .map(|t| u64::from_str_radix(t.trim(), 16))
            .transpose()
            .context("block_size_bytes")?,
        zones: parse_zoneinfo(ok("file:/proc/zoneinfo").context("no /proc/zoneinfo")?)?,
        meminfo: ok("file:/proc/meminfo").map(parse_meminfo).unwrap_or_default(),
        system_ram: ok("file:/proc/iomem").map(parse_iomem).unwrap_or_default(),
        vmstat: ok("file:/proc/vmstat").map(parse_vmstat).unwrap_or_default(),
        blocks: Vec::new(),
    };
    let mut blocks: BTreeMap<u64, Block> = BTreeMap::new();
    for (key, item) in raw {
        let Some(rest) = key.strip_prefix("block:") else {
            continue;
        };
        let (id, attr) = rest.split_once(':').context("bad block key")?;
        let id: u64 = id.parse().with_context(|| format!("bad block id in {key}"))?;
        let b = blocks.entry(id).or_insert_with(|| Block {
            id,
            state: None,
            phys_index: None,
            node: None,
            valid_zones: None,
            valid_zones_error: None,
        });
        let text = item.text.trim();
        match (attr, item.rc) {
            ("state", 0) => b.state = Some(text.to_string()),
            ("phys_index", 0) => b.phys_index = u64::from_str_radix(text, 16).ok(),
            ("valid_zones", 0) => b.valid_zones = Some(text.to_string()),
            ("valid_zones", _) => b.valid_zones_error = Some(text.to_string()),
            ("node", _) if !text.is_empty() => b.node = Some(text.parse().context("bad node link")?),
            _ => {}
        }
    }
    p.blocks = blocks.into_values().collect();
    Ok(p)
}

pub fn parse_zoneinfo(text: &str) -> Result<Vec<Zone>> {
    let mut zones: Vec<Zone> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        // "Node 1, zone  Movable"
        if let Some(rest) = t.strip_prefix("Node ") {
            if let Some((node, zone)) = rest.split_once(", zone") {
                zones.push(Zone {
                    node: node.trim().parse().context("zoneinfo: bad node")?,
                    zone: zone.trim().to_string(),
                    start_pfn: None,
                    spanned: 0,
                    present: 0,
                    managed: 0,
                    free: None,
                    stat_threshold: 0,
                    pcp_count: 0,
                    pcp_batch: 0,
                });
                continue;
            }
        }
        if let Some(v) = t.strip_prefix("vm stats threshold:") {
            if let Some(z) = zones.last_mut() {
                z.stat_threshold += v.trim().parse::<u64>().unwrap_or(0);
            }
            continue;
        }
        let Some(z) = zones.last_mut() else { continue };
        let mut words = t.split_whitespace();
        let (Some(key), Some(val)) = (words.next(), words.next()) else {
            continue;
        };
        let num = || {
            val.parse::<u64>()
                .with_context(|| format!("zoneinfo: bad number in {t:?}"))
        };
        match key {
            "spanned" => z.spanned = num()?,
            "present" => z.present = num()?,
            "managed" => z.managed = num()?,
            "start_pfn:" => z.start_pfn = Some(num()?),
            "nr_free_pages" => z.free = Some(num()?),
            "count:" => z.pcp_count += num()?,
            "batch:" => z.pcp_batch += num()?,
            _ => {}
        }
    }
    Ok(zones)
}

pub fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// "name value" lines.
pub fn parse_vmstat(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect()
}

/// Pages compaction has scanned so far (migrate and free scanners), from /proc/vmstat.
pub fn compaction_scanned(vmstat: &BTreeMap<String, u64>) -> u64 {
    ["compact_migrate_scanned", "compact_free_scanned"]
        .iter()
        .map(|k| vmstat.get(*k).copied().unwrap_or(0))
        .sum()
}

/// "Fallback order for Node 2: 2 0 1" lines of the boot log.
pub fn parse_fallback_orders(dmesg: &str) -> BTreeMap<i64, Vec<i64>> {
    dmesg
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("Fallback order for Node ")? + "Fallback order for Node ".len()..];
            let (node, order) = rest.split_once(':')?;
            let order: Vec<i64> = order.split_whitespace().filter_map(|w| w.parse().ok()).collect();
            Some((node.trim().parse().ok()?, order))
        })
        .collect()
}

/// "a-b" / "a,b" node lists.
pub fn parse_node_list(text: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<i64>().ok()),
        }
    }
    out
}

/// The first top-level range of /proc/iomem named `name`, inclusive.
pub fn iomem_range(text: &str, name: &str) -> Option<(u64, u64)> {
    text.lines().filter(|l| !l.starts_with(' ')).find_map(|l| {
        let (range, n) = l.split_once(" : ")?;
        if n.trim() != name {
            return None;
        }
        let (a, b) = range.split_once('-')?;
        Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?))
    })
}

pub fn parse_iomem(text: &str) -> Vec<(u64, u64)> {
    text.lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| {
            let (range, name) = l.split_once(" : ")?;
            if name.trim() != "System RAM" {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONEINFO: &str = "Node 1, zone   Normal\n  pages free     100\n        min      5\n        spanned  131072\n        present  131072\n        managed  120000\n        cma      0\n        protection: (0, 0, 0, 0)\n      nr_free_pages 100\n  pagesets\n    cpu: 0\n              count: 10\n  vm stats threshold: 12\n    cpu: 1\n  vm stats threshold: 12\n  start_pfn:           1179648\nNode 1, zone  Movable\n  pages free     0\n        min      0\n        spanned  0\n        present  0\n        managed  0\n        protection: (0, 0, 0, 0)\n";

    #[test]
    fn zoneinfo_parses_populated_and_empty_zones() {
        let z = parse_zoneinfo(ZONEINFO).unwrap();
        assert_eq!(z.len(), 2);
        assert_eq!(
            z[0],
            Zone {
                node: 1,
                zone: "Normal".into(),
                start_pfn: Some(1179648),
                spanned: 131072,
                present: 131072,
                managed: 120000,
                free: Some(100),
                stat_threshold: 24,
                pcp_count: 10,
                pcp_batch: 0,
            }
        );
        assert_eq!(z[1].zone, "Movable");
        assert_eq!(z[1].free, None);
        assert_eq!(z[1].start_pfn, None);
        assert_eq!(z[1].spanned, 0);
    }

    #[test]
    fn snapshot_items_parse() {
        let text = "@@ITEM file:/sys/devices/system/memory/block_size_bytes 0\n8000000\n@@ENDITEM\n\
@@ITEM file:/proc/zoneinfo 0\nNode 0, zone DMA\n        spanned 10\n@@ENDITEM\n\
@@ITEM block:32:state 0\noffline\n@@ENDITEM\n\
@@ITEM block:32:valid_zones 1\ncat: read error: Invalid argument\n@@ENDITEM\n\
@@ITEM block:32:node 0\n1\n@@ENDITEM\n@@ITEM block:33:node 0\n\n@@ENDITEM\n";
        let raw = parse_items(text).unwrap();
        let p = parse_snapshot(&raw).unwrap();
        assert_eq!(p.block_size_bytes, Some(0x8000000));
        let b = p.block(32).unwrap();
        assert_eq!(b.state.as_deref(), Some("offline"));
        assert_eq!(b.node, Some(1));
        assert!(b.valid_zones.is_none() && b.valid_zones_error.is_some());
        assert_eq!(p.block(33).unwrap().node, None);
        assert_eq!(p.zones[0].spanned, 10);
    }

    #[test]
    fn boot_log_and_node_lists() {
        let f = parse_fallback_orders(
            "[    0.1] Fallback order for Node 0: 0 1 2 \n[    0.1] Fallback order for Node 2: 2 0 1 \n",
        );
        assert_eq!(f[&2], vec![2, 0, 1]);
        assert_eq!(parse_node_list("0-1\n"), vec![0, 1]);
        assert_eq!(parse_node_list("0,2-3"), vec![0, 2, 3]);
        let iomem = "100000000-13fffffff : Persistent Memory\n  100000000-1011fffff : namespace0.0\n";
        assert_eq!(
            iomem_range(iomem, "Persistent Memory"),
            Some((0x100000000, 0x13fffffff))
        );
    }

    #[test]
    fn iomem_keeps_top_level_system_ram() {
        let r = parse_iomem("00100000-3fffffff : System RAM\n  01000000-01ffffff : Kernel code\n100000000-107ffffff : System RAM\n");
        assert_eq!(r, vec![(0x100000, 0x3fffffff), (0x100000000, 0x107ffffff)]);
    }
}
