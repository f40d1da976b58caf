//! Ground truth of the `failures` scenario: every online/offline write it provoked with the result
//! the guest's shell saw, the times around it (guest clock), the hotplug configuration read from
//! sysfs, free pages around each hot-add, and the guest's kernel log (dynamic debug on for
//! mm/memory_hotplug.c) parsed into the reasons, dumped pages and injected errors it printed.
//! Parsed here, independently of mhpscope's code.

use crate::lab::truth::Parsed;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Failures {
    /// Lines of /sys/kernel/debug/dynamic_debug/control for mm/memory_hotplug.c that print
    /// (`=p`) after the scenario turned them on.
    pub dyndbg_sites: u64,
    /// Whether memory-notifier-error-inject (and notifier-error-inject) loaded.
    pub inject_loaded: bool,
    /// The hotplug knobs as sysfs showed them before the recorder started and right before it
    /// stopped (file name -> trimmed content).
    pub config_start: BTreeMap<String, String>,
    pub config_end: BTreeMap<String, String>,
    /// /proc/cmdline.
    pub cmdline: String,
    /// Zone names by zone index: the order /proc/zoneinfo lists node 0's zones in.
    pub zone_names: Vec<String>,
    /// A boot block whose valid_zones is "none" (it spans two zones).
    pub spans_zones_block: Option<u64>,
    /// A boot block inside one zone with fewer RAM pages than the block has (holes).
    pub holes_block: Option<HolesBlock>,
    /// Every state write, in order.
    pub writes: Vec<TimedWrite>,
    /// Every hot-add, in order.
    pub adds: Vec<AddTiming>,
    /// Blocks the kernel onlined by itself (auto_online_blocks=online).
    pub auto_onlined: Vec<AutoOnline>,
    /// Unmovable (slab) and movable (tmpfs file) memory put on node 1.
    pub fills: Vec<Fill>,
    /// The offline interrupted by a signal.
    pub signal: Option<SignalRun>,
    /// Guest uptime when the scenario stopped the recorder (readiness grace).
    pub t_stop: Option<f64>,
    /// The kernel log, parsed (see [`parse_kernel_log`]).
    pub kernel_log: Vec<LogEvent>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HolesBlock {
    pub block: u64,
    /// Its valid_zones (the one zone it lies in).
    pub zone: String,
    /// System RAM pages of /proc/iomem inside the block.
    pub ram_pages: u64,
    pub block_pages: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimedWrite {
    /// What the write provokes (spans_zones, holes, isolate, notifier_offline, ...).
    pub test: String,
    pub block: u64,
    /// What was written to memoryN/state.
    pub value: String,
    pub rc: i32,
    /// What the shell printed ("sh: write error: Device or resource busy").
    pub output: String,
    /// The errno named by the shell's error text (xtask's table); None when the write worked.
    pub errno: Option<String>,
    /// Guest CLOCK_BOOTTIME (/proc/uptime, 10 ms steps, truncated) right before and after the
    /// write, seconds. CLOCK_MONOTONIC equals it in a guest that never suspends.
    pub t0: f64,
    pub t1: f64,
    /// memory_hotplug.online_policy when the write was made.
    pub policy: String,
    /// Error injected into the memory notifier chain during the write: (action, errno value).
    pub injected: Option<(String, i32)>,
    /// valid_zones and state of the block after the write.
    pub valid_zones_after: Option<String>,
    pub state_after: Option<String>,
    /// /proc/vmstat pgmigrate_success before and after.
    pub migrated: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddTiming {
    pub dimm: String,
    pub node: i64,
    /// Guest uptime right before QMP device_add and when its blocks were seen in sysfs.
    pub t_before: f64,
    pub t_seen: f64,
    /// nr_free_pages of /proc/zoneinfo summed per node, right before device_add and right
    /// after the blocks appeared.
    pub free_before: BTreeMap<i64, u64>,
    pub free_after: BTreeMap<i64, u64>,
    /// Per node: the zones' "vm stats threshold" summed over zones and CPUs (pages).
    pub stat_threshold: BTreeMap<i64, u64>,
    /// Per node: the per-CPU lists' pages and batches summed over zones and CPUs, before.
    #[serde(default)]
    pub pcp_count: BTreeMap<i64, u64>,
    #[serde(default)]
    pub pcp_batch: BTreeMap<i64, u64>,
    /// auto_online_blocks when it was added.
    pub auto_online_blocks: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutoOnline {
    pub dimm: String,
    pub block: u64,
    pub state: Option<String>,
    pub valid_zones: Option<String>,
    /// Guest uptime when the block was seen online.
    pub t_seen: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fill {
    pub what: String,
    pub cmd: String,
    pub rc: i32,
    pub output: String,
    /// nr_free_pages of the node's zones before and after, by zone name.
    pub free_before: BTreeMap<String, u64>,
    pub free_after: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignalRun {
    pub block: u64,
    pub signal: String,
    /// Whether the poll saw the block "going-offline" before sending the signal.
    pub saw_going_offline: bool,
    pub polls: u64,
    /// The writer's exit status from `wait` (128 + signal when the signal killed it).
    pub wait_status: i32,
    pub state_after: Option<String>,
    pub t0: f64,
    pub t1: f64,
    pub output: String,
}

/// What the kernel log said, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogEvent {
    /// A dump_page.
    PageDump(PageDump),
    /// "memory offlining [mem START-END] failed due to REASON" (END inclusive).
    OfflineFailed { start: u64, end: u64, reason: String },
    /// "online_pages [mem START-END] failed".
    OnlineFailed { start: u64, end: u64 },
    /// memory-notifier-error-inject: "Injecting error (ERR) to ACTION".
    Injected { error: i64, action: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageDump {
    pub pfn: u64,
    pub refcount: i64,
    pub mapcount: i64,
    pub flags_raw: Option<u64>,
    /// The flag names of the "flags: 0x...(a|b|node=1|zone=2)" line (without the fields).
    pub flags: Vec<String>,
    pub node: Option<u32>,
    /// Zone index.
    pub zone: Option<u32>,
    /// "page_type: f5(slab)" (6.12 and later): "slab".
    pub page_type: Option<String>,
    /// "page dumped because: REASON".
    pub reason: Option<String>,
}

impl LogEvent {
    pub fn pfn_range(&self) -> Option<(u64, u64)> {
        match self {
            LogEvent::OfflineFailed { start, end, .. } | LogEvent::OnlineFailed { start, end } => {
                Some((start >> 12, (end + 1) >> 12))
            }
            _ => None,
        }
    }
}

/// Drops the "[    1.234567] " (and any "[  T123]") prefixes of a dmesg line.
fn strip_prefixes(mut l: &str) -> &str {
    loop {
        let t = l.trim_start();
        match t.strip_prefix('[').and_then(|r| r.find(']').map(|i| &r[i + 1..])) {
            Some(rest) => l = rest,
            None => return t,
        }
    }
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// "[mem 0x0000000100000000-0x0000000107ffffff]" in `l`: (start, end inclusive).
fn mem_range(l: &str) -> Option<(u64, u64)> {
    let r = &l[l.find("[mem ")? + 5..];
    let (range, _) = r.split_once(']')?;
    let (a, b) = range.split_once('-')?;
    Some((hex(a)?, hex(b)?))
}

/// The events of a kernel log (`dmesg` output) that the failures scenario checks against.
pub fn parse_kernel_log(dmesg: &str) -> Vec<LogEvent> {
    let mut out = Vec::new();
    let mut dump: Option<PageDump> = None;
    for raw in dmesg.lines() {
        let l = strip_prefixes(raw);
        if l.starts_with("page:") && l.contains("refcount:") {
            if let Some(d) = dump.take() {
                out.push(LogEvent::PageDump(d));
            }
            let field = |key: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(str::to_string)
            };
            let (Some(pfn), Some(refcount), Some(mapcount)) = (
                field("pfn:").and_then(|v| hex(&v)),
                field("refcount:").and_then(|v| v.parse().ok()),
                field("mapcount:").and_then(|v| v.parse().ok()),
            ) else {
                continue;
            };
            dump = Some(PageDump {
                pfn,
                refcount,
                mapcount,
                flags_raw: None,
                flags: Vec::new(),
                node: None,
                zone: None,
                page_type: None,
                reason: None,
            });
            continue;
        }
        if let Some(d) = dump.as_mut() {
            // "flags: 0x..(..)", "anon flags: ...", "ksm flags: ...": the first one is the page's.
            if let Some(i) = l.find("flags: 0x").filter(|_| d.flags_raw.is_none()) {
                let rest = &l[i + "flags: ".len()..];
                let (num, names) = rest.split_once('(').unwrap_or((rest, ""));
                d.flags_raw = hex(num.split_whitespace().next().unwrap_or(num));
                let names = names.split(')').next().unwrap_or("");
                for part in names.split('|').filter(|p| !p.is_empty()) {
                    match part.split_once('=') {
                        Some(("node", v)) => d.node = v.parse().ok(),
                        Some(("zone", v)) => d.zone = v.parse().ok(),
                        Some(_) => {}
                        None => d.flags.push(part.to_string()),
                    }
                }
                continue;
            }
            if let Some(rest) = l.strip_prefix("page_type: ") {
                d.page_type = rest
                    .split_once('(')
                    .map(|(_, n)| n.trim_end_matches(')').to_string())
                    .filter(|n| !n.is_empty());
                continue;
            }
        }
        if let Some(reason) = l.strip_prefix("page dumped because: ") {
            if let Some(mut d) = dump.take() {
                d.reason = Some(reason.trim().to_string());
                out.push(LogEvent::PageDump(d));
            }
            continue;
        }
        if l.starts_with("memory offlining [mem ") {
            if let (Some((start, end)), Some((_, reason))) = (mem_range(l), l.split_once("failed due to ")) {
                out.push(LogEvent::OfflineFailed {
                    start,
                    end,
                    reason: reason.trim().to_string(),
                });
            }
            continue;
        }
        if l.starts_with("online_pages [mem ") && l.trim_end().ends_with("failed") {
            if let Some((start, end)) = mem_range(l) {
                out.push(LogEvent::OnlineFailed { start, end });
            }
            continue;
        }
        if let Some(rest) = l.strip_prefix("Injecting error (") {
            if let Some((err, action)) = rest.split_once(") to ") {
                if let Ok(error) = err.parse() {
                    out.push(LogEvent::Injected {
                        error,
                        action: action.trim().to_string(),
                    });
                }
            }
        }
    }
    if let Some(d) = dump {
        out.push(LogEvent::PageDump(d));
    }
    out
}

/// errno names and numbers (x86-64 Linux), with glibc's strerror text (busybox-static on
/// Debian is glibc) and musl's where it differs.
const ERRNOS: &[(&str, i32, &[&str])] = &[
    ("EPERM", 1, &["Operation not permitted"]),
    ("ENOENT", 2, &["No such file or directory"]),
    ("EINTR", 4, &["Interrupted system call"]),
    ("EIO", 5, &["Input/output error", "I/O error"]),
    ("ENXIO", 6, &["No such device or address"]),
    ("E2BIG", 7, &["Argument list too long"]),
    ("EAGAIN", 11, &["Resource temporarily unavailable"]),
    ("ENOMEM", 12, &["Cannot allocate memory", "Out of memory"]),
    ("EACCES", 13, &["Permission denied"]),
    ("EFAULT", 14, &["Bad address"]),
    ("EBUSY", 16, &["Device or resource busy", "Resource busy"]),
    ("EEXIST", 17, &["File exists"]),
    ("ENODEV", 19, &["No such device"]),
    ("EINVAL", 22, &["Invalid argument"]),
    ("ENOSPC", 28, &["No space left on device"]),
    (
        "ERANGE",
        34,
        &["Numerical result out of range", "Result not representable"],
    ),
    ("ENOSYS", 38, &["Function not implemented"]),
    ("EOPNOTSUPP", 95, &["Operation not supported", "Not supported"]),
    ("ETIMEDOUT", 110, &["Connection timed out", "Operation timed out"]),
    ("EHWPOISON", 133, &["Memory page has hardware error"]),
];

pub fn errno_from_strerror(text: &str) -> Option<&'static str> {
    let t = text.trim();
    ERRNOS
        .iter()
        .find(|(_, _, texts)| texts.contains(&t))
        .map(|(n, _, _)| *n)
}

pub fn errno_number(name: &str) -> Option<i32> {
    ERRNOS.iter().find(|(n, _, _)| *n == name).map(|(_, v, _)| *v)
}

/// The errno a shell's error output names ("sh: write error: Invalid argument" -> EINVAL).
pub fn errno_of_output(text: &str) -> Option<&'static str> {
    text.lines().rev().find_map(|l| {
        let i = l.rfind(": ")?;
        errno_from_strerror(&l[i + 2..])
    })
}

/// An online boot block whose valid_zones is "none": it spans two zones.
pub fn spans_zones_block(p: &Parsed) -> Option<u64> {
    p.blocks
        .iter()
        .find(|b| b.state.as_deref() == Some("online") && b.valid_zones.as_deref() == Some("none"))
        .map(|b| b.id)
}

/// An online boot block inside one zone (valid_zones names one) with fewer System RAM pages
/// (/proc/iomem) than the block has: offline_pages must refuse it for its holes.
pub fn holes_block(p: &Parsed) -> Option<HolesBlock> {
    let bs = p.block_size_bytes?;
    p.blocks.iter().rev().find_map(|b| {
        let zone = b.valid_zones.as_deref()?;
        if b.state.as_deref() != Some("online") || zone == "none" || zone.contains(' ') {
            return None;
        }
        let (lo, hi) = (b.id * bs, (b.id + 1) * bs);
        let ram: u64 = p
            .system_ram
            .iter()
            .map(|&(a, e)| (a.max(lo), (e + 1).min(hi)))
            .filter(|(a, e)| a < e)
            .map(|(a, e)| (e - a) / 4096)
            .sum();
        (ram > 0 && ram < bs / 4096).then(|| HolesBlock {
            block: b.id,
            zone: zone.to_string(),
            ram_pages: ram,
            block_pages: bs / 4096,
        })
    })
}

/// nr_free_pages of zoneinfo summed per node.
pub fn free_per_node(p: &Parsed) -> BTreeMap<i64, u64> {
    per_node(p, |z| z.free.unwrap_or(0))
}

/// A zone figure summed per node (over zones and CPUs).
pub fn per_node(p: &Parsed, field: impl Fn(&crate::lab::truth::Zone) -> u64) -> BTreeMap<i64, u64> {
    let mut m = BTreeMap::new();
    for z in &p.zones {
        *m.entry(z.node).or_default() += field(z);
    }
    m
}

/// Zone names by index: zoneinfo lists every zone of a node, populated or not, in index order.
pub fn zone_names(p: &Parsed) -> Vec<String> {
    let first = p.zones.first().map(|z| z.node);
    p.zones
        .iter()
        .filter(|z| Some(z.node) == first)
        .map(|z| z.zone.clone())
        .collect()
}

/// The first number of /proc/uptime output.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as the 6.1 lab guest prints them (dump_page's first line has "page:%p").
    const LOG_61: &str = "\
[   40.101010] page:00000000d2a8b54b refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x108200
[   40.101011] flags: 0x4000000000000200(slab|node=1|zone=2)
[   40.101012] raw: 4000000000000200 ffff8880010425c0 dead000000000122 0000000000000000
[   40.101013] raw: 0000000000000000 0000000000100010 00000001ffffffff 0000000000000000
[   40.101014] page dumped because: unmovable page
[   40.101020] memory offlining [mem 0x0000000100000000-0x0000000107ffffff] failed due to failure to isolate range
[   41.000000] memory offlining [mem 0x0000000038000000-0x000000003fffffff] failed due to memory holes
[   42.000000] Injecting error (-12) to MEM_GOING_OFFLINE
[   42.000100] memory offlining [mem 0x0000000108000000-0x000000010fffffff] failed due to notifier failure
[   43.000000] Injecting error (-12) to MEM_GOING_ONLINE
[   43.000001] online_pages [mem 0x0000000110000000-0x0000000117ffffff] failed
";

    #[test]
    fn kernel_log_61() {
        let ev = parse_kernel_log(LOG_61);
        assert_eq!(ev.len(), 7, "{ev:#?}");
        assert_eq!(
            ev[0],
            LogEvent::PageDump(PageDump {
                pfn: 0x108200,
                refcount: 1,
                mapcount: 0,
                flags_raw: Some(0x4000000000000200),
                flags: vec!["slab".into()],
                node: Some(1),
                zone: Some(2),
                page_type: None,
                reason: Some("unmovable page".into()),
            })
        );
        assert_eq!(
            ev[1],
            LogEvent::OfflineFailed {
                start: 0x100000000,
                end: 0x107ffffff,
                reason: "failure to isolate range".into()
            }
        );
        assert_eq!(ev[1].pfn_range(), Some((0x100000, 0x108000)));
        assert_eq!(
            ev[2],
            LogEvent::OfflineFailed {
                start: 0x38000000,
                end: 0x3fffffff,
                reason: "memory holes".into()
            }
        );
        assert_eq!(
            ev[3],
            LogEvent::Injected {
                error: -12,
                action: "MEM_GOING_OFFLINE".into()
            }
        );
        assert!(matches!(&ev[4], LogEvent::OfflineFailed { reason, .. } if reason == "notifier failure"));
        assert_eq!(
            ev[6],
            LogEvent::OnlineFailed {
                start: 0x110000000,
                end: 0x117ffffff
            }
        );
    }

    #[test]
    fn kernel_log_612_folio_dump() {
        // 6.12/7.2: "page: refcount", a head line for large folios, lastcpupid, page_type.
        let log = "\
[   50.0] page: refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x104e00
[   50.0] head: order:3 mapcount:0 entire_mapcount:0 nr_pages_mapped:0 pincount:0
[   50.0] memcg:ffff888003f4c001
[   50.0] flags: 0x4000000000000040(head|node=1|zone=2|lastcpupid=0x1fffff)
[   50.0] page_type: f5(slab)
[   50.0] raw: 4000000000000040 ffff888004a1c8c0 dead000000000122 0000000000000000
[   50.0] head: 4000000000000040 ffff888004a1c8c0 dead000000000122 0000000000000000
[   50.0] page dumped because: unmovable page
[   50.1] memory offlining [mem 0x0000000100000000-0x0000000107ffffff] failed due to failure to isolate range
";
        let ev = parse_kernel_log(log);
        assert_eq!(ev.len(), 2);
        let LogEvent::PageDump(d) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(d.pfn, 0x104e00);
        assert_eq!(d.flags, vec!["head".to_string()]);
        assert_eq!((d.node, d.zone), (Some(1), Some(2)));
        assert_eq!(d.page_type.as_deref(), Some("slab"));
        assert_eq!(d.reason.as_deref(), Some("unmovable page"));
        assert_eq!(d.flags_raw, Some(0x4000000000000040));
    }

    #[test]
    fn dump_without_reason_is_kept_and_other_lines_ignored() {
        let log = "page: refcount:0 mapcount:0 mapping:0000000000000000 index:0x1 pfn:0x10\n\
                   flags: 0x0(node=0|zone=1)\nsomething else\n\
                   page:000000001 refcount:3 mapcount:1 mapping:0 index:0x0 pfn:0x20\n\
                   page dumped because: migration failure\n";
        let ev = parse_kernel_log(log);
        assert_eq!(ev.len(), 2);
        let LogEvent::PageDump(a) = &ev[0] else { panic!() };
        assert_eq!((a.pfn, a.reason.clone(), a.flags.len()), (0x10, None, 0));
        assert_eq!((a.node, a.zone), (Some(0), Some(1)));
        let LogEvent::PageDump(b) = &ev[1] else { panic!() };
        assert_eq!((b.pfn, b.refcount, b.mapcount), (0x20, 3, 1));
        assert_eq!(b.reason.as_deref(), Some("migration failure"));
    }

    #[test]
    fn errnos_from_busybox_text() {
        assert_eq!(
            errno_of_output("sh: write error: Invalid argument"),
            Some("EINVAL")
        );
        assert_eq!(
            errno_of_output("sh: write error: Device or resource busy\n"),
            Some("EBUSY")
        );
        assert_eq!(
            errno_of_output("sh: write error: Cannot allocate memory"),
            Some("ENOMEM")
        );
        assert_eq!(
            errno_of_output("ash: write error: Interrupted system call"),
            Some("EINTR")
        );
        assert_eq!(errno_of_output(""), None);
        assert_eq!(errno_number("EBUSY"), Some(16));
    }

    fn parsed(blocks: &[(u64, &str)], ram: &[(u64, u64)]) -> Parsed {
        Parsed {
            block_size_bytes: Some(0x8000000),
            blocks: blocks
                .iter()
                .map(|&(id, vz)| crate::lab::truth::Block {
                    id,
                    state: Some("online".into()),
                    phys_index: None,
                    node: None,
                    valid_zones: Some(vz.into()),
                    valid_zones_error: None,
                })
                .collect(),
            system_ram: ram.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn boot_blocks_with_holes_and_two_zones() {
        // The 2-node lab guest: memory0 is DMA+DMA32, memory7 ends at 0x3ffdffff (e820 hole).
        let p = parsed(
            &[(0, "none"), (1, "DMA32"), (6, "DMA32"), (7, "DMA32")],
            &[(0x1000, 0x9efff), (0x100000, 0x3ffdffff)],
        );
        assert_eq!(spans_zones_block(&p), Some(0));
        let h = holes_block(&p).unwrap();
        assert_eq!(h.block, 7);
        assert_eq!(h.zone, "DMA32");
        assert_eq!(h.block_pages - h.ram_pages, 0x20);
        // No holes: nothing to pick.
        let p = parsed(&[(1, "DMA32")], &[(0, 0x3fffffff)]);
        assert!(holes_block(&p).is_none());
    }
}
