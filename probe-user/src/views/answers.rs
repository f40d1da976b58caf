//! The answers to the questions operators ask, from the model: why each online/offline failed
//! and which page was in the way, when added memory became usable, what a hot-add took from its
//! node, why a block went to its zone, and what the configuration in force means. Pure: the
//! report, `top` and the metrics all read these.
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    errno::errno_name,
    kernel::frame::HotplugConfig,
    model::event::OnlineType,
    model::{
        attempts::{AttemptKind, FailReason, Migration},
        page_flags::PageWhat,
        KernelFeatures, Model,
    },
};

/// Thresholds the answers are judged by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// A hot-add taking more than this share of a node's free memory is a finding.
    pub headroom_warn: f64,
    /// Blocks still offline this long after their hot-add are a finding.
    pub online_grace_ns: u64,
    /// "Now", for how long blocks have waited: the end of the trace.
    pub now_ns: u64,
}

pub const DEFAULT_HEADROOM_WARN: f64 = 0.10;
pub const DEFAULT_ONLINE_GRACE_NS: u64 = 30_000_000_000;

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            headroom_warn: DEFAULT_HEADROOM_WARN,
            online_grace_ns: DEFAULT_ONLINE_GRACE_NS,
            now_ns: 0,
        }
    }
}

/// One online or offline attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AttemptDoc {
    pub ts_ns: u64,
    pub duration_ns: u64,
    pub kind: AttemptKind,
    /// Memory block number (sysfs memoryN), when the block device's probe saw it.
    pub block: Option<u64>,
    /// The range online_pages/offline_pages was called for; None when refused before.
    pub start_pfn: Option<u64>,
    pub nr_pages: Option<u64>,
    pub node: Option<i32>,
    pub zone: Option<String>,
    /// What the online asked for.
    pub requested: Option<OnlineType>,
    /// Onlined by the kernel while hot-adding (auto_online_blocks).
    pub auto_online: bool,
    /// The online policy in force as the online ran (onlines only).
    pub policy: Option<String>,
    /// `auto_movable_ratio` as the online ran, when read.
    pub auto_movable_ratio: Option<u32>,
    /// 0 or a negative errno; `errno` names it.
    pub ret: i32,
    pub errno: String,
    pub reason: Option<FailReason>,
    /// The reason in the kernel's own words ("failure to isolate range").
    pub reason_words: Option<String>,
    pub blocking_page: Option<BlockingPageDoc>,
    pub migration: Migration,
}

/// The first page the kernel dumped during an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockingPageDoc {
    pub pfn: u64,
    /// `page->flags` as dump_page prints it.
    pub flags_raw: u64,
    /// Set PG_* flags (None when the recording lacks the kernel's numbering).
    pub flags: Option<Vec<String>>,
    pub page_type: Option<String>,
    pub node: Option<u32>,
    pub zone: Option<String>,
    pub what: Option<PageWhat>,
    pub refcount: i32,
    /// As dump_page prints it (`_mapcount + 1`); meaningless when the page has a type.
    pub mapcount: i32,
    /// Why the kernel dumped it ("unmovable page").
    pub dump_reason: String,
}

/// When the blocks of one hot-add became usable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReadinessDoc {
    /// End of the hot-add's `__add_pages`.
    pub ts_ns: u64,
    pub node: i32,
    pub start_pfn: u64,
    pub nr_pages: u64,
    pub blocks: Vec<BlockReadiness>,
    /// Blocks still offline at the end of the trace.
    pub offline_blocks: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockReadiness {
    pub block: u64,
    /// From the add to the block's first online; None: never onlined while traced.
    pub online_after_ns: Option<u64>,
}

/// What one hot-add took from existing memory, next to the free memory of the nodes it took it
/// from. Free pages are read in the kernel as `__add_pages` begins and ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HeadroomDoc {
    pub ts_ns: u64,
    pub node: i32,
    pub start_pfn: u64,
    pub nr_pages: u64,
    pub ret: i32,
    pub errno: String,
    pub by_node: Vec<NodeHeadroom>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeHeadroom {
    pub node: i32,
    /// Taken from this node for the memmap (measured by kmem:mm_page_alloc).
    pub taken_bytes: u64,
    pub free_before_bytes: Option<u64>,
    pub free_after_bytes: Option<u64>,
    /// taken / free before.
    pub share_of_free: Option<f64>,
}

/// One knob of the configuration, with what it means in plain words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigItem {
    pub key: ConfigKey,
    pub value: String,
    pub consequence: String,
    /// Whether this commonly surprises people (memory never onlined, memmap taken first).
    pub warn: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigKey {
    MemmapOnMemory,
    AutoOnlineBlocks,
    OnlinePolicy,
    AutoMovableRatio,
    AutoMovableNumaAware,
    MovableNode,
    BlockSize,
    DaxMemmapOnMemory,
    ZoneDevice,
    HotRemove,
    Contiguity,
}

/// A finding, most important first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Answer {
    pub ts_ns: u64,
    pub kind: AnswerKind,
    /// One line in plain words.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// An offline failed.
    OfflineFailed,
    /// An online failed.
    OnlineFailed,
    /// A hot-add failed allocating (ENOMEM).
    AllocationFailed,
    /// Added memory not onlined after the grace time.
    NeverOnlined,
    /// A hot-add took more than the set share of a node's free memory.
    Headroom,
}

/// Everything above, for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Answers {
    pub answers: Vec<Answer>,
    pub attempts: Vec<AttemptDoc>,
    pub readiness: Vec<ReadinessDoc>,
    pub headroom: Vec<HeadroomDoc>,
    pub config: Vec<ConfigItem>,
}

impl Answers {
    pub fn build(model: &Model, config: &HotplugConfig, t: Thresholds) -> Answers {
        let attempts = attempts(model, config);
        let readiness = readiness(model);
        let headroom = headroom(model);
        let mut config_items = audit(
            config,
            model.layout.block_size_bytes,
            model.layout.struct_page_size,
            model.layout.page_size,
        );
        config_items.extend(audit_kernel(&model.layout.features));
        let answers = answers(&attempts, &readiness, &headroom, config, t);
        Answers {
            answers,
            attempts,
            readiness,
            headroom,
            config: config_items,
        }
    }
}

fn attempts(model: &Model, config: &HotplugConfig) -> Vec<AttemptDoc> {
    let l = &model.layout;
    model
        .attempts
        .list
        .iter()
        .map(|a| AttemptDoc {
            ts_ns: a.ts_ns,
            duration_ns: a.duration_ns,
            kind: a.kind,
            block: a.block.or_else(|| a.pages.map(|(pfn, _)| l.block_of_pfn(pfn))),
            start_pfn: a.pages.map(|p| p.0),
            nr_pages: a.pages.map(|p| p.1),
            node: a.node,
            zone: a.zone.map(|z| l.zone_name(z.zone)),
            requested: a.requested,
            auto_online: a.auto_online,
            // The policy read in the kernel as the online ran; sysfs's at start otherwise.
            policy: match (a.kind, a.policy) {
                (AttemptKind::Offline, _) => None,
                (AttemptKind::Online, Some(p)) => Some(p.policy.as_str().to_string()),
                (AttemptKind::Online, None) => config.online_policy.clone(),
            },
            auto_movable_ratio: a.policy.and_then(|p| p.auto_movable_ratio),
            ret: a.ret,
            errno: errno_name(a.ret),
            reason: a.reason,
            reason_words: a.reason.map(|r| r.kernel_words().to_string()),
            blocking_page: a.blocking_page.as_ref().map(|p| {
                let info = l
                    .page_flags
                    .as_ref()
                    .map(|f| f.decode(p.flags, p.page_type, p.refcount, p.mapcount));
                BlockingPageDoc {
                    pfn: p.pfn,
                    flags_raw: p.flags,
                    flags: info.as_ref().map(|i| i.flags.clone()),
                    page_type: info.as_ref().and_then(|i| i.page_type.clone()),
                    node: info.as_ref().map(|i| i.node),
                    zone: info.as_ref().map(|i| l.zone_name(i.zone)),
                    what: info.as_ref().map(|i| i.what),
                    refcount: p.refcount,
                    mapcount: info.as_ref().map_or(p.mapcount.saturating_add(1), |i| i.mapcount),
                    dump_reason: p.reason.clone(),
                }
            }),
            migration: a.migration,
        })
        .collect()
}

fn readiness(model: &Model) -> Vec<ReadinessDoc> {
    let l = &model.layout;
    model
        .hot_adds
        .iter()
        .filter(|h| h.ret == 0)
        .map(|h| {
            let first = l.block_of_pfn(h.pfn);
            let blocks: Vec<BlockReadiness> = h
                .first_online_ns
                .iter()
                .enumerate()
                .map(|(i, t)| BlockReadiness {
                    block: first + i as u64,
                    online_after_ns: t.map(|t| t.saturating_sub(h.ts_ns)),
                })
                .collect();
            // Blocks removed again while traced are no longer waiting.
            let offline_blocks = blocks
                .iter()
                .filter(|b| b.online_after_ns.is_none())
                .filter(|b| {
                    model
                        .blocks
                        .get(b.block)
                        .is_some_and(|blk| blk.state == crate::model::BlockState::Offline)
                })
                .count() as u64;
            ReadinessDoc {
                ts_ns: h.ts_ns,
                node: h.node,
                start_pfn: h.pfn,
                nr_pages: h.nr_pages,
                blocks,
                offline_blocks,
            }
        })
        .collect()
}

fn headroom(model: &Model) -> Vec<HeadroomDoc> {
    let page = model.layout.page_size;
    model
        .hot_adds
        .iter()
        .filter(|h| {
            h.allocs.as_ref().is_some_and(|a| a.total() > 0) || !h.free_before.is_empty() || h.ret != 0
        })
        .map(|h| {
            let taken: BTreeMap<i32, u64> = h.allocs.as_ref().map(|a| a.by_node.clone()).unwrap_or_default();
            let mut nodes: Vec<i32> = taken.keys().copied().collect();
            nodes.extend(h.free_before.keys().filter(|n| !taken.contains_key(n)));
            nodes.sort_unstable();
            HeadroomDoc {
                ts_ns: h.ts_ns,
                node: h.node,
                start_pfn: h.pfn,
                nr_pages: h.nr_pages,
                ret: h.ret,
                errno: errno_name(h.ret),
                by_node: nodes
                    .into_iter()
                    .map(|n| {
                        let taken_bytes = taken.get(&n).copied().unwrap_or(0);
                        let free_before_bytes = h.free_before.get(&n).map(|p| p.saturating_mul(page));
                        NodeHeadroom {
                            node: n,
                            taken_bytes,
                            free_before_bytes,
                            free_after_bytes: h.free_after.get(&n).map(|p| p.saturating_mul(page)),
                            share_of_free: free_before_bytes
                                .filter(|&f| f > 0)
                                .map(|f| taken_bytes as f64 / f as f64),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The configuration with what each setting means for someone hot-adding memory.
pub fn audit(c: &HotplugConfig, block_size: u64, struct_page: u64, page_size: u64) -> Vec<ConfigItem> {
    let mib = |b: u64| format!("{} MiB", b >> 20);
    let memmap_per_block = (block_size / page_size.max(1)) * struct_page;
    let block = mib(block_size);
    let mut out = vec![ConfigItem {
        key: ConfigKey::BlockSize,
        value: block.clone(),
        consequence: format!(
            "memory is onlined and offlined in {block} blocks; each needs {} of struct pages (memmap)",
            fmt_small(memmap_per_block)
        ),
        warn: false,
    }];
    if let Some(v) = &c.memmap_on_memory {
        let on = v != "N";
        out.push(ConfigItem {
            key: ConfigKey::MemmapOnMemory,
            value: v.clone(),
            consequence: if on {
                format!(
                    "hot-added blocks host their own memmap ({} of each {block} block) where the kernel allows it; the rest takes it from existing memory",
                    fmt_small(memmap_per_block)
                )
            } else {
                format!(
                    "memmap_on_memory={v}: every {block} hot-add takes {} from existing memory first",
                    fmt_small(memmap_per_block)
                )
            },
            warn: !on,
        });
    }
    if let Some(v) = &c.auto_online_blocks {
        let (consequence, warn) = match v.as_str() {
            "offline" => (
                "hot-added memory stays offline (unusable) until something onlines it: a udev rule, an agent, or echo online > memoryN/state".to_string(),
                true,
            ),
            "online" => ("hot-added memory is onlined at once; the online policy picks the zone".to_string(), false),
            "online_kernel" => (
                "hot-added memory is onlined at once to a kernel zone: usable for everything, but it may never offline again".to_string(),
                false,
            ),
            "online_movable" => (
                "hot-added memory is onlined at once to ZONE_MOVABLE: it can be offlined, but holds no kernel allocations".to_string(),
                false,
            ),
            other => (format!("unknown value {other:?}"), false),
        };
        out.push(ConfigItem {
            key: ConfigKey::AutoOnlineBlocks,
            value: v.clone(),
            consequence,
            warn,
        });
    }
    if let Some(v) = &c.online_policy {
        let consequence = match v.as_str() {
            "auto-movable" => format!(
                "'online' goes to ZONE_MOVABLE while MOVABLE:KERNEL stays within {}%{}, else to a kernel zone",
                c.auto_movable_ratio.map_or("the ratio".to_string(), |r| r.to_string()),
                if c.auto_movable_numa_aware == Some(true) { " (per node too)" } else { "" }
            ),
            "contig-zones" => "'online' keeps zones contiguous: a block next to ZONE_MOVABLE goes there, others to a kernel zone (ZONE_MOVABLE with movable_node)".to_string(),
            other => format!("unknown policy {other:?}"),
        };
        out.push(ConfigItem {
            key: ConfigKey::OnlinePolicy,
            value: v.clone(),
            consequence,
            warn: false,
        });
    }
    if let (Some(r), Some("auto-movable")) = (c.auto_movable_ratio, c.online_policy.as_deref()) {
        out.push(ConfigItem {
            key: ConfigKey::AutoMovableRatio,
            value: r.to_string(),
            consequence: format!("up to {r} MiB movable per 100 MiB of kernel memory"),
            warn: false,
        });
    }
    if let (Some(v), Some("auto-movable")) = (c.auto_movable_numa_aware, c.online_policy.as_deref()) {
        out.push(ConfigItem {
            key: ConfigKey::AutoMovableNumaAware,
            value: if v { "Y" } else { "N" }.into(),
            consequence: if v {
                "the ratio also holds per node".into()
            } else {
                "the ratio holds system-wide only: a node can end up all movable".into()
            },
            warn: false,
        });
    }
    if let Some(v) = c.movable_node {
        out.push(ConfigItem {
            key: ConfigKey::MovableNode,
            value: if v { "on" } else { "off" }.into(),
            consequence: if v {
                "hotpluggable boot memory and 'online' blocks without a neighbour go to ZONE_MOVABLE".into()
            } else {
                "'online' blocks without a neighbouring zone go to a kernel zone".into()
            },
            warn: false,
        });
    }
    for (dev, on) in &c.dax_memmap_on_memory {
        out.push(ConfigItem {
            key: ConfigKey::DaxMemmapOnMemory,
            value: format!("{dev}={}", if *on { 1 } else { 0 }),
            consequence: if *on {
                format!("{dev} as system RAM (kmem) hosts its own memmap")
            } else {
                format!("{dev} as system RAM (kmem) takes its memmap from existing memory")
            },
            warn: false,
        });
    }
    out
}

/// What the kernel was built with, and what that means for hotplug.
pub fn audit_kernel(f: &KernelFeatures) -> Vec<ConfigItem> {
    let mut out = Vec::new();
    let yes_no = |v: bool| if v { "built in" } else { "not built" }.to_string();
    if let Some(v) = f.hot_remove {
        out.push(ConfigItem {
            key: ConfigKey::HotRemove,
            value: yes_no(v),
            consequence: if v {
                "memory can be offlined and hot-removed".into()
            } else {
                "CONFIG_MEMORY_HOTREMOVE is off: added memory can be onlined but never offlined or removed"
                    .into()
            },
            warn: !v,
        });
    }
    if let Some(v) = f.zone_device {
        out.push(ConfigItem {
            key: ConfigKey::ZoneDevice,
            value: yes_no(v),
            consequence: if v {
                "pmem, devdax and CXL ranges can be mapped as ZONE_DEVICE (memremap_pages)".into()
            } else {
                "CONFIG_ZONE_DEVICE is off: no devdax/fsdax or device-private memory".into()
            },
            warn: false,
        });
    }
    if let Some(v) = f.contiguity_from_counter {
        out.push(ConfigItem {
            key: ConfigKey::Contiguity,
            value: if v {
                "pages_with_online_memmap"
            } else {
                "set_zone_contiguous"
            }
            .into(),
            consequence: if v {
                "zone contiguity comes from a per-zone counter; resizes do not rescan pageblocks".into()
            } else {
                "every zone resize rescans the zone's pageblocks in set_zone_contiguous".into()
            },
            warn: false,
        });
    }
    out
}

fn fmt_small(b: u64) -> String {
    if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{} MiB", b >> 20)
    } else if b >= 1 << 10 {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

fn answers(
    attempts: &[AttemptDoc],
    readiness: &[ReadinessDoc],
    headroom: &[HeadroomDoc],
    config: &HotplugConfig,
    t: Thresholds,
) -> Vec<Answer> {
    let mut out = Vec::new();
    for a in attempts.iter().filter(|a| a.ret != 0) {
        let what = match a.kind {
            AttemptKind::Offline => "offline",
            AttemptKind::Online => "online",
        };
        let block = a.block.map_or("a range".into(), |b| format!("memory{b}"));
        let reason = a.reason_words.as_deref().unwrap_or("unknown");
        let page = a.blocking_page.as_ref().map_or(String::new(), |p| {
            let what = p.what.map_or(String::new(), |w| {
                format!(" ({})", serde_name(&w).unwrap_or_default())
            });
            format!("; page {:#x}{what} is in the way", p.pfn)
        });
        out.push(Answer {
            ts_ns: a.ts_ns,
            kind: match a.kind {
                AttemptKind::Offline => AnswerKind::OfflineFailed,
                AttemptKind::Online => AnswerKind::OnlineFailed,
            },
            message: format!("{what} of {block} failed with {}: {reason}{page}", a.errno),
        });
    }
    for h in headroom {
        if h.ret == -12 {
            out.push(Answer {
                ts_ns: h.ts_ns,
                kind: AnswerKind::AllocationFailed,
                message: format!(
                    "hot-add at pfn {:#x} on node {} failed: ENOMEM while allocating",
                    h.start_pfn, h.node
                ),
            });
        }
        for n in &h.by_node {
            if let (Some(share), Some(free)) = (n.share_of_free, n.free_before_bytes) {
                if share > t.headroom_warn {
                    out.push(Answer {
                        ts_ns: h.ts_ns,
                        kind: AnswerKind::Headroom,
                        message: format!(
                            "hot-add at pfn {:#x} took {} from node {} for its memmap: {:.0}% of its {} free",
                            h.start_pfn,
                            fmt_small(n.taken_bytes),
                            n.node,
                            share * 100.0,
                            fmt_small(free)
                        ),
                    });
                }
            }
        }
    }
    for r in readiness {
        let waited = t.now_ns.saturating_sub(r.ts_ns);
        if r.offline_blocks == 0 || waited < t.online_grace_ns {
            continue;
        }
        let tried: Vec<&AttemptDoc> = attempts
            .iter()
            .filter(|a| a.kind == AttemptKind::Online && a.ts_ns >= r.ts_ns)
            .filter(|a| a.block.is_some_and(|b| r.blocks.iter().any(|x| x.block == b)))
            .collect();
        let cause = match tried.iter().rev().find(|a| a.ret != 0) {
            Some(a) => format!(
                "online failed with {}: {}",
                a.errno,
                a.reason_words.as_deref().unwrap_or("unknown")
            ),
            None if tried.is_empty() => match config.auto_online_blocks.as_deref() {
                Some("offline") => "never onlined; auto_online_blocks=offline".into(),
                Some(v) => format!("never onlined (auto_online_blocks={v})"),
                None => "never onlined".into(),
            },
            None => "never onlined".into(),
        };
        out.push(Answer {
            ts_ns: r.ts_ns,
            kind: AnswerKind::NeverOnlined,
            message: format!(
                "{} of {} blocks added at pfn {:#x} on node {} still offline {} s later: {cause}",
                r.offline_blocks,
                r.blocks.len(),
                r.start_pfn,
                r.node,
                waited / 1_000_000_000
            ),
        });
    }
    // Most important first, then newest first.
    out.sort_by(|a, b| a.kind.cmp(&b.kind).then(b.ts_ns.cmp(&a.ts_ns)));
    out
}

/// A unit enum's name as the JSON spells it ("slab"), for text and labels: one spelling for
/// every view.
pub fn serde_name<T: Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::event::{Event, Op},
        model::{Layout, Model},
    };

    const MIB: u64 = 1 << 20;

    /// Block 0 (the pfns the memmap comes from) on node 0.
    fn model() -> Model {
        let mut m = Model::new(Layout {
            zone_names: crate::kernel::kernel_btf::default_zone_names(),
            page_size: 4096,
            struct_page_size: 64,
            block_size_bytes: 128 * MIB,
            page_flags: None,
            features: Default::default(),
        });
        m.apply_frame(&crate::kernel::frame::Frame {
            block_size_bytes: 128 * MIB,
            page_size: 4096,
            blocks: vec![crate::kernel::frame::BlockFrame {
                id: 0,
                state: "online".into(),
                node: Some(0),
                valid_zones: Some("DMA32".into()),
            }]
            .into_iter()
            .collect(),
            nodes: vec![],
            zones: vec![],
            config: HotplugConfig::default(),
        });
        m
    }

    fn ev(ts_ns: u64, duration_ns: u64, op: Op) -> Event {
        Event {
            ts_ns,
            duration_ns,
            tid: 7,
            op,
        }
    }

    /// A 128 MiB hot-add at 4 GiB on node 1 whose memmap (2 MiB) came from node 0.
    fn hot_add(m: &mut Model, ts: u64, free_before_pages: u64) {
        let pfn = 0x100000;
        m.ingest(&ev(
            ts,
            0,
            Op::NodeFreePages {
                node: 0,
                free_pages: free_before_pages,
                moment: crate::model::event::AddMoment::Before,
                window_pfn: pfn,
            },
        ));
        m.ingest(&ev(
            ts + 5,
            0,
            Op::PageAlloc {
                pfn: 0x1000,
                order: 9,
                window_node: 1,
                window_pfn: pfn,
            },
        ));
        m.ingest(&ev(
            ts + 10,
            10,
            Op::AddPages {
                node: 1,
                pfn,
                nr_pages: 32768,
                altmap: false,
                ret: 0,
            },
        ));
    }

    fn thresholds(now_ns: u64) -> Thresholds {
        Thresholds {
            headroom_warn: 0.10,
            online_grace_ns: 30_000_000_000,
            now_ns,
        }
    }

    #[test]
    fn memmap_from_existing_memory_is_a_warning_with_its_size() {
        let c = HotplugConfig {
            memmap_on_memory: Some("N".into()),
            auto_online_blocks: Some("offline".into()),
            ..HotplugConfig::default()
        };
        let items = audit(&c, 128 * MIB, 64, 4096);
        let memmap = items.iter().find(|i| i.key == ConfigKey::MemmapOnMemory).unwrap();
        assert!(memmap.warn);
        assert!(
            memmap.consequence.contains("takes 2 MiB from existing memory"),
            "{}",
            memmap.consequence
        );
        let online = items
            .iter()
            .find(|i| i.key == ConfigKey::AutoOnlineBlocks)
            .unwrap();
        assert!(online.warn && online.consequence.contains("stays offline"));
    }

    #[test]
    fn a_block_never_onlined_is_a_finding_only_after_the_grace_time() {
        let mut m = model();
        hot_add(&mut m, 1_000_000_000, 1 << 20);
        let config = HotplugConfig {
            auto_online_blocks: Some("offline".into()),
            ..HotplugConfig::default()
        };
        let early = Answers::build(&m, &config, thresholds(20_000_000_000));
        assert!(early.answers.iter().all(|a| a.kind != AnswerKind::NeverOnlined));
        let late = Answers::build(&m, &config, thresholds(40_000_000_000));
        let f = late
            .answers
            .iter()
            .find(|a| a.kind == AnswerKind::NeverOnlined)
            .expect("finding");
        assert!(f.message.contains("auto_online_blocks=offline"), "{}", f.message);
        assert_eq!(late.readiness[0].offline_blocks, 1);

        // Onlined 3 s after the add: no finding, and the wait is measured.
        m.ingest(&ev(
            4_000_000_010,
            1000,
            Op::OnlinePages {
                pfn: 0x100000,
                nr_pages: 32768,
                zone: crate::model::event::ZoneId { node: 1, zone: 3 },
                ret: 0,
            },
        ));
        let done = Answers::build(&m, &config, thresholds(40_000_000_000));
        assert!(done.answers.is_empty(), "{:?}", done.answers);
        assert_eq!(done.readiness[0].blocks[0].online_after_ns, Some(3_000_000_000));
    }

    #[test]
    fn headroom_is_a_finding_over_the_threshold_only() {
        // 2 MiB taken from node 0: 1.5% of 128 MiB free, 20% of 10 MiB free.
        for (free_pages, finding) in [(32768, false), (2560, true)] {
            let mut m = model();
            hot_add(&mut m, 1_000, free_pages);
            let a = Answers::build(&m, &HotplugConfig::default(), thresholds(2_000));
            let n = &a.headroom[0].by_node[0];
            assert_eq!((n.node, n.taken_bytes), (0, 2 * MIB));
            assert_eq!(n.free_before_bytes, Some(free_pages * 4096));
            assert_eq!(
                a.answers.iter().any(|f| f.kind == AnswerKind::Headroom),
                finding,
                "{free_pages}"
            );
        }
    }
}
