//! The probe set: which kernel function each probe watches, what it needs, and its status.
use serde::{Deserialize, Serialize};

pub struct ProbeSpec {
    /// Stable probe name (also the kernel function for now).
    pub name: &'static str,
    pub function: &'static str,
    /// Program names in the eBPF object.
    pub entry_program: &'static str,
    pub exit_program: &'static str,
    /// Struct members read by the programs ("zone.contiguous"); without them the probe would
    /// read garbage, so it is not attached.
    pub needs: &'static [&'static str],
    /// What the user sees thanks to it.
    pub shows: &'static str,
}

const ZONE: &[&str] = &[
    "zone.zone_pgdat",
    "zone.zone_start_pfn",
    "zone.spanned_pages",
    "zone (size)",
    "pglist_data.node_zones",
    "pglist_data.node_id",
];

pub const PROBES: &[ProbeSpec] = &[
    ProbeSpec {
        name: "add_memory_resource",
        function: "add_memory_resource",
        entry_program: "add_memory_resource_entry",
        exit_program: "add_memory_resource_exit",
        needs: &["resource.start", "resource.end"],
        shows: "hot-add: physical range, MHP flags, result, duration",
    },
    ProbeSpec {
        name: "arch_add_memory",
        function: "arch_add_memory",
        entry_program: "arch_add_memory_entry",
        exit_program: "arch_add_memory_exit",
        needs: &[
            "mhp_params.altmap",
            "vmem_altmap.base_pfn",
            "vmem_altmap.alloc",
            "vmem_altmap.align",
        ],
        shows: "hot-add: real node, altmap (self-hosted memmap) pages",
    },
    ProbeSpec {
        name: "mhp_init_memmap_on_memory",
        function: "mhp_init_memmap_on_memory",
        entry_program: "mhp_init_memmap_on_memory_entry",
        exit_program: "mhp_init_memmap_on_memory_exit",
        needs: ZONE,
        shows: "self-hosted memmap: pfn, vmemmap pages, zone",
    },
    ProbeSpec {
        name: "online_pages",
        function: "online_pages",
        entry_program: "online_pages_entry",
        exit_program: "online_pages_exit",
        needs: ZONE,
        shows: "online: range, zone, node, result, duration",
    },
    ProbeSpec {
        name: "move_pfn_range_to_zone",
        function: "move_pfn_range_to_zone",
        entry_program: "move_pfn_range_to_zone_entry",
        exit_program: "move_pfn_range_to_zone_exit",
        needs: ZONE,
        shows: "memmap initialisation time; zone span growth",
    },
    ProbeSpec {
        name: "offline_pages",
        function: "offline_pages",
        entry_program: "offline_pages_entry",
        exit_program: "offline_pages_exit",
        needs: ZONE,
        shows: "offline: range, result, duration",
    },
    ProbeSpec {
        name: "remove_pfn_range_from_zone",
        function: "remove_pfn_range_from_zone",
        entry_program: "remove_pfn_range_from_zone_entry",
        exit_program: "remove_pfn_range_from_zone_exit",
        needs: ZONE,
        shows: "zone span shrinking",
    },
    ProbeSpec {
        name: "set_zone_contiguous",
        function: "set_zone_contiguous",
        entry_program: "set_zone_contiguous_entry",
        exit_program: "set_zone_contiguous_exit",
        needs: &[
            "zone.contiguous",
            "zone.zone_pgdat",
            "zone.zone_start_pfn",
            "zone.spanned_pages",
            "zone (size)",
            "pglist_data.node_zones",
            "pglist_data.node_id",
        ],
        shows: "zone contiguity before/after, duration",
    },
    ProbeSpec {
        name: "try_remove_memory",
        function: "try_remove_memory",
        entry_program: "try_remove_memory_entry",
        exit_program: "try_remove_memory_exit",
        needs: &[],
        shows: "hot-remove: range, result",
    },
];

/// Whether a probe attached, how, and if not, why (in plain words).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProbeStatus {
    pub name: String,
    pub function: String,
    pub attached: bool,
    /// "fentry/fexit" when attached.
    pub method: Option<String>,
    pub reason: Option<String>,
}

impl ProbeStatus {
    pub fn attached(spec: &ProbeSpec, method: &str) -> ProbeStatus {
        ProbeStatus {
            name: spec.name.into(),
            function: spec.function.into(),
            attached: true,
            method: Some(method.into()),
            reason: None,
        }
    }

    pub fn failed(spec: &ProbeSpec, reason: impl Into<String>) -> ProbeStatus {
        ProbeStatus {
            name: spec.name.into(),
            function: spec.function.into(),
            attached: false,
            method: None,
            reason: Some(reason.into()),
        }
    }
}
