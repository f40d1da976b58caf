//! Struct layouts of the running kernel, read from its BTF.
//!
//! Rust eBPF programs have no CO-RE: member offsets differ between 6.1, 6.12 and 7.x, so they are
//! resolved here at load time and handed to the programs (`probe_common::KernelOffsets`).
use std::path::Path;

use btf_rs::{Btf, Type};
use probe_common::KernelOffsets;
use serde::{Deserialize, Serialize};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read kernel BTF {path}: {reason} (kernel built without CONFIG_DEBUG_INFO_BTF?)")]
    Unreadable { path: String, reason: String },
    #[error("struct {0} is not in the kernel BTF")]
    NoStruct(String),
    #[error("struct {strukt} has no member {member} in the kernel BTF")]
    NoMember { strukt: String, member: String },
    #[error("enum {0} is not in the kernel BTF")]
    NoEnum(String),
}

pub struct KernelBtf {
    btf: Btf,
}

impl KernelBtf {
    pub fn load(path: &Path) -> Result<KernelBtf, BtfError> {
        Btf::from_file(path)
            .map(|btf| KernelBtf { btf })
            .map_err(|e| BtfError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
    }

    fn find_struct(&self, name: &str) -> Result<btf_rs::Struct, BtfError> {
        self.btf
            .resolve_types_by_name(name)
            .unwrap_or_default()
            .into_iter()
            .find_map(|t| match t {
                Type::Struct(s) => Some(s),
                _ => None,
            })
            .ok_or_else(|| BtfError::NoStruct(name.to_string()))
    }

    pub fn struct_size(&self, name: &str) -> Result<u64, BtfError> {
        Ok(self.find_struct(name)?.size() as u64)
    }

    /// Byte offset of `member` in `struct strukt`, looking through anonymous structs and unions.
    pub fn member_offset(&self, strukt: &str, member: &str) -> Result<u64, BtfError> {
        let s = self.find_struct(strukt)?;
        self.find_member(&s, member).ok_or_else(|| BtfError::NoMember {
            strukt: strukt.to_string(),
            member: member.to_string(),
        })
    }

    fn find_member(&self, s: &btf_rs::Struct, member: &str) -> Option<u64> {
        for m in &s.members {
            let off = u64::from(m.bit_offset() / 8);
            let name = self.btf.resolve_name(m).unwrap_or_default();
            if name == member {
                return Some(off);
            }
            if name.is_empty() {
                if let Ok(Type::Struct(inner) | Type::Union(inner)) = self.btf.resolve_chained_type(m) {
                    if let Some(inner_off) = self.find_member(&inner, member) {
                        return Some(off + inner_off);
                    }
                }
            }
        }
        None
    }

    /// Whether the kernel has a BTF FUNC of that name (needed for fentry/fexit).
    pub fn has_function(&self, name: &str) -> bool {
        self.btf
            .resolve_types_by_name(name)
            .unwrap_or_default()
            .iter()
            .any(|t| matches!(t, Type::Func(_)))
    }

    /// Through typedefs and qualifiers to the type they name.
    fn strip(&self, mut t: Type) -> Type {
        for _ in 0..16 {
            t = match &t {
                Type::Typedef(x) => self.btf.resolve_chained_type(x),
                Type::Const(x) => self.btf.resolve_chained_type(x),
                Type::Volatile(x) => self.btf.resolve_chained_type(x),
                Type::Restrict(x) => self.btf.resolve_chained_type(x),
                Type::TypeTag(x) => self.btf.resolve_chained_type(x),
                _ => return t,
            }
            .unwrap_or(Type::Void);
        }
        t
    }

    /// Number of elements of the global array variable `name`, when BTF describes it (pahole
    /// emits VARs of global variables only from 1.27 on, with `--btf_features=global_var`).
    pub fn var_array_len(&self, name: &str) -> Option<usize> {
        self.btf
            .resolve_types_by_name(name)
            .unwrap_or_default()
            .into_iter()
            .find_map(|t| match t {
                Type::Var(v) => self.btf.resolve_chained_type(&v).ok(),
                _ => None,
            })
            .and_then(|t| match self.strip(t) {
                Type::Array(a) => Some(a.len()),
                _ => None,
            })
    }

    /// Number of elements of the array member `member` of `struct strukt`.
    pub fn member_array_len(&self, strukt: &str, member: &str) -> Option<usize> {
        let s = self.find_struct(strukt).ok()?;
        let m = s
            .members
            .iter()
            .find(|m| self.btf.resolve_name(*m).unwrap_or_default() == member)?;
        match self.strip(self.btf.resolve_chained_type(m).ok()?) {
            Type::Array(a) => Some(a.len()),
            _ => None,
        }
    }

    /// `sizeof` of the type (struct, union or typedef of one) named `name`.
    pub fn type_size(&self, name: &str) -> Option<u64> {
        self.btf
            .resolve_types_by_name(name)
            .unwrap_or_default()
            .into_iter()
            .find_map(|t| match self.strip(t) {
                Type::Struct(s) | Type::Union(s) => Some(s.size() as u64),
                _ => None,
            })
    }

    /// Enumerators of `enum name`, as (name, value).
    pub fn enum_values(&self, name: &str) -> Result<Vec<(String, u64)>, BtfError> {
        let e = self
            .btf
            .resolve_types_by_name(name)
            .unwrap_or_default()
            .into_iter()
            .find_map(|t| match t {
                Type::Enum(e) => Some(e),
                _ => None,
            })
            .ok_or_else(|| BtfError::NoEnum(name.to_string()))?;
        Ok(e.members
            .iter()
            .map(|m| (self.btf.resolve_name(m).unwrap_or_default(), u64::from(m.val())))
            .collect())
    }
}

/// What userspace needs to know about the kernel's types, beyond the offsets themselves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TypeFacts {
    /// Zone names by index (`enum zone_type`), spelled as /proc/zoneinfo does ("Normal").
    pub zone_names: Vec<String>,
    pub struct_page_size: u64,
    /// How `page->flags` and `page->page_type` are laid out, for decoding dumped pages.
    pub page_flags: Option<crate::model::PageFlagsLayout>,
    /// The kernel has `zone.pages_with_online_memmap` and derives zone contiguity from it
    /// (contiguous when it equals spanned_pages) instead of walking pageblocks in
    /// `set_zone_contiguous` on every zone resize. None of 6.1, 6.12 and 7.2 has it.
    #[serde(default)]
    pub contiguity_from_counter: bool,
    /// What the kernel was built with, as its BTF shows it.
    #[serde(default)]
    pub features: crate::model::KernelFeatures,
}

/// The resolved layout, and every member that could not be resolved ("zone.contiguous").
pub struct Layout {
    pub offsets: KernelOffsets,
    pub missing: Vec<String>,
    pub facts: TypeFacts,
    /// How this kernel numbers what the decoder needs (memory notifier actions).
    pub decode: crate::kernel::decode::DecodeCtx,
}

pub fn resolve_layout(btf: &KernelBtf) -> Layout {
    let mut o = KernelOffsets::UNRESOLVED;
    let mut missing = Vec::new();
    let mut member = |strukt: &str, name: &str, slot: &mut u64| match btf.member_offset(strukt, name) {
        Ok(v) => *slot = v,
        Err(_) => missing.push(format!("{strukt}.{name}")),
    };
    member("resource", "start", &mut o.resource_start);
    member("resource", "end", &mut o.resource_end);
    member("mhp_params", "altmap", &mut o.mhp_params_altmap);
    member("vmem_altmap", "base_pfn", &mut o.altmap_base_pfn);
    member("vmem_altmap", "align", &mut o.altmap_align);
    member("vmem_altmap", "alloc", &mut o.altmap_alloc);
    member("zone", "zone_pgdat", &mut o.zone_pgdat);
    member("zone", "zone_start_pfn", &mut o.zone_start_pfn);
    member("zone", "spanned_pages", &mut o.zone_spanned_pages);
    member("zone", "contiguous", &mut o.zone_contiguous);
    member("pglist_data", "node_zones", &mut o.pgdat_node_zones);
    member("pglist_data", "node_id", &mut o.pgdat_node_id);
    member("dev_pagemap", "type", &mut o.pgmap_type);
    member("dev_pagemap", "flags", &mut o.pgmap_flags);
    member("dev_pagemap", "nr_range", &mut o.pgmap_nr_range);
    member("dev_pagemap", "range", &mut o.pgmap_range);
    member("trace_event_raw_mm_page_alloc", "pfn", &mut o.tp_page_alloc_pfn);
    member(
        "trace_event_raw_mm_page_alloc",
        "order",
        &mut o.tp_page_alloc_order,
    );
    member("memory_block", "dev", &mut o.mem_dev);
    member("memory_block", "start_section_nr", &mut o.mem_start_section_nr);
    member("memory_block", "online_type", &mut o.mem_online_type);
    member("memory_block", "nid", &mut o.mem_nid);
    member("memory_block", "zone", &mut o.mem_zone);
    member("page", "flags", &mut o.page_flags);
    member("page", "_refcount", &mut o.page_refcount);
    member("page", "_mapcount", &mut o.page_mapcount);
    member("page", "page_type", &mut o.page_type);
    member("zone", "vm_stat", &mut o.zone_vm_stat);
    member(
        "trace_event_raw_test_pages_isolated",
        "start_pfn",
        &mut o.tp_tpi_start_pfn,
    );
    member(
        "trace_event_raw_test_pages_isolated",
        "end_pfn",
        &mut o.tp_tpi_end_pfn,
    );
    member(
        "trace_event_raw_test_pages_isolated",
        "fin_pfn",
        &mut o.tp_tpi_fin_pfn,
    );
    member(
        "trace_event_raw_mm_migrate_pages",
        "succeeded",
        &mut o.tp_mmp_succeeded,
    );
    member("trace_event_raw_mm_migrate_pages", "failed", &mut o.tp_mmp_failed);
    member("trace_event_raw_mm_migrate_pages", "reason", &mut o.tp_mmp_reason);
    member("scatterlist", "page_link", &mut o.sg_page_link);
    member("scatterlist", "length", &mut o.sg_length);
    member("page_reporting_dev_info", "order", &mut o.prdev_order);
    // Optional: 7.x has a per-device capacity, older kernels PAGE_REPORTING_CAPACITY.
    if let Ok(v) = btf.member_offset("page_reporting_dev_info", "capacity") {
        o.prdev_capacity = v;
    }
    match btf.struct_size("scatterlist") {
        Ok(v) => o.sg_size = v,
        Err(_) => missing.push("scatterlist (size)".into()),
    }
    // Optional: only kernels that count online memmap pages per zone have it.
    let contiguity_from_counter = match btf.member_offset("zone", "pages_with_online_memmap") {
        Ok(v) => {
            o.zone_pages_with_online_memmap = v;
            true
        }
        Err(_) => false,
    };
    match btf
        .enum_values("zone_stat_item")
        .ok()
        .and_then(|v| enum_value(&v, "NR_FREE_PAGES"))
    {
        Some(v) => o.nr_free_pages_idx = v,
        None => missing.push(NR_FREE_PAGES.into()),
    }
    let zone_type = btf.enum_values("zone_type").unwrap_or_default();
    match enum_value(&zone_type, "__MAX_NR_ZONES") {
        Some(v) => o.max_nr_zones = v,
        None => missing.push(MAX_NR_ZONES.into()),
    }
    match btf.struct_size("zone") {
        Ok(v) => o.zone_size = v,
        Err(_) => missing.push("zone (size)".into()),
    }
    let zone_names = btf
        .enum_values("zone_type")
        .map(|vals| zone_names_from_enum(&vals))
        .unwrap_or_else(|_| default_zone_names());
    let struct_page_size = match btf.struct_size("page") {
        Ok(v) => {
            o.page_size = v;
            v
        }
        Err(_) => {
            missing.push("page (size)".into());
            64
        }
    };
    let page_flags = page_flags_layout(btf, o.max_nr_zones);
    match &page_flags {
        Some(l) if l.zone_bits > 0 => {
            o.page_flags_node_shift = l.node_shift.into();
            o.page_flags_node_bits = l.node_bits.into();
            o.page_flags_zone_shift = l.zone_shift.into();
            o.page_flags_zone_bits = l.zone_bits.into();
        }
        _ => missing.push(PAGE_FLAGS_ZONE.into()),
    }
    let decode = crate::kernel::decode::DecodeCtx::from_memory_block_state(
        btf.enum_values("memory_block_state").ok().as_deref(),
    );
    Layout {
        offsets: o,
        missing,
        facts: TypeFacts {
            zone_names,
            struct_page_size,
            page_flags,
            contiguity_from_counter,
            features: crate::model::KernelFeatures {
                // CONFIG_ZONE_DEVICE builds memremap_pages, CONFIG_MEMORY_HOTREMOVE offline_pages.
                zone_device: Some(btf.has_function("memremap_pages")),
                hot_remove: Some(btf.has_function("offline_pages")),
                contiguity_from_counter: Some(contiguity_from_counter),
            },
        },
        decode,
    }
}

/// Names of what `resolve_layout` may list as missing besides struct members.
pub const NR_FREE_PAGES: &str = "enum zone_stat_item.NR_FREE_PAGES";
pub const MAX_NR_ZONES: &str = "enum zone_type.__MAX_NR_ZONES";
/// Where node and zone sit in `page->flags` (derived from `enum pageflags`, MAX_NUMNODES and
/// MAX_NR_ZONES; see `page_flags_layout`).
pub const PAGE_FLAGS_ZONE: &str = "page->flags node/zone layout";

fn enum_value(values: &[(String, u64)], name: &str) -> Option<u64> {
    values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

/// MAX_NUMNODES: the length of `node_data[]` (`struct pglist_data *node_data[MAX_NUMNODES]`)
/// when BTF has the variable; else from `struct zonelist`'s `_zonerefs[MAX_ZONES_PER_ZONELIST +
/// 1]` (MAX_ZONES_PER_ZONELIST = MAX_NUMNODES * MAX_NR_ZONES); else the bits of `nodemask_t`
/// (rounded up to whole longs: exact only from 64 nodes on, which x86-64 distribution kernels
/// have).
fn max_numnodes(btf: &KernelBtf, max_nr_zones: u64) -> Option<u64> {
    if let Some(n) = btf.var_array_len("node_data") {
        return Some(n as u64);
    }
    if max_nr_zones > 0 {
        if let Some(n) = btf.member_array_len("zonelist", "_zonerefs") {
            let n = n as u64;
            if n > 1 && (n - 1).is_multiple_of(max_nr_zones) {
                return Some((n - 1) / max_nr_zones);
            }
        }
    }
    btf.type_size("nodemask_t").map(|bytes| bytes * 8)
}

/// ZONES_SHIFT as include/linux/page-flags-layout.h derives it from MAX_NR_ZONES.
pub fn zones_shift(max_nr_zones: u64) -> Option<u8> {
    match max_nr_zones {
        0 => None,
        1 => Some(0),
        2 => Some(1),
        3..=4 => Some(2),
        5..=8 => Some(3),
        _ => None,
    }
}

/// How `page->flags` is laid out, from BTF. `enum pageflags` gives the flag bits, `enum
/// pagetype` (6.12 on) the page types; the node and zone fields sit at the top of the word.
///
/// Assumption (x86-64, CONFIG_SPARSEMEM_VMEMMAP, as every kernel mhpscope attaches to): no
/// section bits in `flags` (SECTIONS_WIDTH = 0) and the node fits (no NODE_NOT_IN_PAGE_FLAGS), so
/// NODES_PGSHIFT = 64 - NODES_SHIFT and ZONES_PGSHIFT = NODES_PGSHIFT - ZONES_SHIFT, with
/// NODES_SHIFT = log2(MAX_NUMNODES) and ZONES_SHIFT from MAX_NR_ZONES (<=2: 1, <=4: 2, <=8: 3).
/// The lab checks it against the kernel's own dump_page line "node=N|zone=M".
pub fn page_flags_layout(btf: &KernelBtf, max_nr_zones: u64) -> Option<crate::model::PageFlagsLayout> {
    let pageflags = btf.enum_values("pageflags").ok()?;
    let flags = pageflags
        .iter()
        .filter_map(|(n, v)| Some((n.strip_prefix("PG_")?.to_string(), u8::try_from(*v).ok()?)))
        .filter(|(_, v)| *v < 64)
        .collect();
    let page_types = btf
        .enum_values("pagetype")
        .unwrap_or_default()
        .iter()
        .filter_map(|(n, v)| Some((n.strip_prefix("PGTY_")?.to_string(), u8::try_from(*v).ok()?)))
        .collect();
    let numnodes = max_numnodes(btf, max_nr_zones)?;
    let zone_bits = zones_shift(max_nr_zones)?;
    flags_layout(flags, page_types, numnodes, zone_bits)
}

fn flags_layout(
    flags: Vec<(String, u8)>,
    page_types: Vec<(String, u8)>,
    max_numnodes: u64,
    zone_bits: u8,
) -> Option<crate::model::PageFlagsLayout> {
    if !max_numnodes.is_power_of_two() {
        return None;
    }
    let node_bits = max_numnodes.trailing_zeros() as u8;
    let node_shift = 64u8.checked_sub(node_bits)?;
    let zone_shift = node_shift.checked_sub(zone_bits)?;
    Some(crate::model::PageFlagsLayout {
        flags,
        page_types,
        node_shift,
        node_bits,
        zone_shift,
        zone_bits,
    })
}

/// `ZONE_NORMAL` -> "Normal", as the kernel's `zone_names[]` spells it.
pub fn zone_names_from_enum(values: &[(String, u64)]) -> Vec<String> {
    let mut named: Vec<(u64, String)> = values
        .iter()
        .filter(|(n, _)| n.starts_with("ZONE_"))
        .map(|(n, v)| {
            let short = &n["ZONE_".len()..];
            let pretty = match short {
                "DMA" | "DMA32" => short.to_string(),
                "HIGHMEM" => "HighMem".to_string(),
                other => {
                    let lower = other.to_ascii_lowercase();
                    let mut c = lower.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                }
            };
            (*v, pretty)
        })
        .collect();
    named.sort();
    named.into_iter().map(|(_, n)| n).collect()
}

pub fn default_zone_names() -> Vec<String> {
    ["DMA", "DMA32", "Normal", "Movable", "Device"]
        .map(String::from)
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_zone_sit_at_the_top_of_page_flags() {
        // Debian amd64: NODES_SHIFT 10 (MAX_NUMNODES 1024), five zones.
        let l = flags_layout(vec![("locked".into(), 0)], vec![], 1024, zones_shift(5).unwrap()).unwrap();
        assert_eq!(
            (l.node_shift, l.node_bits, l.zone_shift, l.zone_bits),
            (54, 10, 51, 3)
        );
        // node 1, zone 3 (Movable), as the kernel packs them.
        let flags: u64 = (1 << 54) | (3 << 51) | 1;
        assert_eq!((flags >> l.node_shift) & ((1 << l.node_bits) - 1), 1);
        assert_eq!((flags >> l.zone_shift) & ((1 << l.zone_bits) - 1), 3);
        assert_eq!(zones_shift(2), Some(1));
        assert_eq!(zones_shift(4), Some(2));
        assert_eq!(zones_shift(9), None);
        assert!(flags_layout(vec![], vec![], 1000, 3).is_none());
    }

    #[test]
    fn zone_names_follow_the_enum_order() {
        let vals = vec![
            ("ZONE_MOVABLE".to_string(), 3),
            ("ZONE_DMA".to_string(), 0),
            ("ZONE_NORMAL".to_string(), 2),
            ("ZONE_DMA32".to_string(), 1),
            ("ZONE_DEVICE".to_string(), 4),
            ("__MAX_NR_ZONES".to_string(), 5),
        ];
        assert_eq!(zone_names_from_enum(&vals), default_zone_names());
    }

    /// Against the real BTF of the kernel this test runs on: the members the probes read exist
    /// and lie inside their structs.
    #[test]
    fn resolves_the_running_kernels_layout() {
        let path = Path::new(VMLINUX_BTF);
        if !path.exists() {
            eprintln!("skipped: {VMLINUX_BTF} absent on this machine");
            return;
        }
        let btf = KernelBtf::load(path).expect("kernel BTF parses");
        let layout = resolve_layout(&btf);
        assert!(layout.missing.is_empty(), "missing: {:?}", layout.missing);
        let o = layout.offsets;
        assert!(o.zone_size > o.zone_contiguous && o.zone_size > o.zone_spanned_pages);
        assert_eq!(o.resource_start, 0);
        assert_eq!(o.resource_end, 8);
        assert_eq!(layout.facts.struct_page_size, 64);
        assert_eq!(o.page_size, 64);
        assert!(layout.facts.zone_names.contains(&"Movable".to_string()));
        assert!(btf.has_function("online_pages"));
        assert!(
            !btf.has_function("shrink_zone_span"),
            "shrink_zone_span is inlined everywhere"
        );
    }
}
