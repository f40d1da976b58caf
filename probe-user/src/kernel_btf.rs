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
}

/// The resolved layout, and every member that could not be resolved ("zone.contiguous").
pub struct Layout {
    pub offsets: KernelOffsets,
    pub missing: Vec<String>,
    pub facts: TypeFacts,
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
    Layout {
        offsets: o,
        missing,
        facts: TypeFacts {
            zone_names,
            struct_page_size,
        },
    }
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
