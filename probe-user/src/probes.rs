//! The probe set: what each probe point shows, the ordered ways to attach it (fentry, kprobe,
//! a traceable caller, a tracepoint), and its status on the running kernel.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Fentry,
    Kprobe,
    RawTracepoint,
    Tracepoint,
    /// No program of its own: a caller's probe carries the data.
    Caller,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Fentry,
        Method::Kprobe,
        Method::RawTracepoint,
        Method::Tracepoint,
        Method::Caller,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Fentry => "fentry",
            Method::Kprobe => "kprobe",
            Method::RawTracepoint => "raw_tracepoint",
            Method::Tracepoint => "tracepoint",
            Method::Caller => "caller",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// One way to attach a probe point.
#[derive(Debug, Clone, Copy)]
pub enum Way {
    /// An entry and an exit program on `function` (fentry/fexit or kprobe/kretprobe).
    Pair {
        method: Method,
        function: &'static str,
        entry: &'static str,
        exit: &'static str,
    },
    /// A single entry program (counters).
    Entry {
        method: Method,
        function: &'static str,
        program: &'static str,
    },
    /// A tracepoint, classic (`raw: false`: the program reads the trace record the kernel
    /// builds) or raw (the program gets the tracepoint's arguments). `needs`: what must have
    /// been resolved on the running kernel (struct members, kallsyms symbols) for this way.
    Tracepoint {
        raw: bool,
        category: &'static str,
        name: &'static str,
        program: &'static str,
        needs: &'static [&'static str],
    },
    /// Derived from another probe point, which must be attached: `probe` is its name.
    Caller {
        probe: &'static str,
        function: &'static str,
    },
}

impl Way {
    /// The eBPF programs this way runs in the kernel (a caller's probe runs none of its own).
    pub fn programs(&self) -> Vec<&'static str> {
        match *self {
            Way::Pair { entry, exit, .. } => vec![entry, exit],
            Way::Entry { program, .. } | Way::Tracepoint { program, .. } => vec![program],
            Way::Caller { .. } => Vec::new(),
        }
    }

    pub fn method(&self) -> Method {
        match *self {
            Way::Pair { method, .. } | Way::Entry { method, .. } => method,
            Way::Tracepoint { raw: true, .. } => Method::RawTracepoint,
            Way::Tracepoint { raw: false, .. } => Method::Tracepoint,
            Way::Caller { .. } => Method::Caller,
        }
    }

    pub fn function(&self) -> String {
        match *self {
            Way::Pair { function, .. } | Way::Entry { function, .. } | Way::Caller { function, .. } => {
                function.to_string()
            }
            Way::Tracepoint { category, name, .. } => format!("{category}:{name}"),
        }
    }

    /// How it is attached, in the words `mhpscope probes` prints.
    pub fn describe(&self) -> String {
        match *self {
            Way::Pair {
                method: Method::Fentry,
                ..
            } => "fentry/fexit".into(),
            Way::Pair {
                method: Method::Kprobe,
                ..
            } => "kprobe/kretprobe".into(),
            Way::Pair { method, .. } | Way::Entry { method, .. } => method.as_str().into(),
            Way::Tracepoint { raw: true, .. } => "raw tracepoint".into(),
            Way::Tracepoint { raw: false, .. } => "tracepoint".into(),
            Way::Caller { function, .. } => format!("caller {function}"),
        }
    }
}

pub struct Alternative {
    pub way: Way,
    /// What is lost compared with the first alternative ("" for the first).
    pub loses: &'static str,
}

pub struct ProbeSpec {
    /// Stable probe name.
    pub name: &'static str,
    /// Struct members read by the programs ("zone.contiguous"); without them the probe would
    /// read garbage, so it is not attached.
    pub needs: &'static [&'static str],
    /// What the user sees thanks to it.
    pub shows: &'static str,
    /// Best first.
    pub alternatives: &'static [Alternative],
}

const ZONE: &[&str] = &[
    "zone.zone_pgdat",
    "zone.zone_start_pfn",
    "zone.spanned_pages",
    "zone (size)",
    "pglist_data.node_zones",
    "pglist_data.node_id",
];

const PGMAP: &[&str] = &[
    "zone.zone_pgdat",
    "zone (size)",
    "pglist_data.node_zones",
    "pglist_data.node_id",
    "dev_pagemap.type",
    "dev_pagemap.flags",
    "dev_pagemap.nr_range",
    "dev_pagemap.range",
];

const KPROBE_LOSES: &str = "a little more overhead per call (int3 trap instead of a trampoline)";

/// The fentry/fexit and the kprobe/kretprobe alternatives on one function; programs are named
/// `<prefix>_fentry`, `<prefix>_fexit`, `<prefix>_kprobe`, `<prefix>_kretprobe`.
macro_rules! fentry_kprobe {
    ($func:literal, $prefix:literal) => {
        [
            Alternative {
                way: Way::Pair {
                    method: Method::Fentry,
                    function: $func,
                    entry: concat!($prefix, "_fentry"),
                    exit: concat!($prefix, "_fexit"),
                },
                loses: "",
            },
            Alternative {
                way: Way::Pair {
                    method: Method::Kprobe,
                    function: $func,
                    entry: concat!($prefix, "_kprobe"),
                    exit: concat!($prefix, "_kretprobe"),
                },
                loses: KPROBE_LOSES,
            },
        ]
    };
}

/// fentry/fexit, then kprobe/kretprobe, then (optionally) a caller's probe.
macro_rules! pair {
    ($func:literal, $prefix:literal) => {
        &fentry_kprobe!($func, $prefix)
    };
    ($func:literal, $prefix:literal, caller $probe:literal, $loses:literal) => {{
        let [fentry, kprobe] = fentry_kprobe!($func, $prefix);
        &[
            fentry,
            kprobe,
            Alternative {
                way: Way::Caller {
                    probe: $probe,
                    function: $probe,
                },
                loses: $loses,
            },
        ]
    }};
}

pub const ADD_PAGES: &str = "__add_pages";
/// The kallsyms symbol whose value is the memmap's start (x86-64): what the raw page-allocation
/// tracepoint needs to turn a page pointer into a pfn.
pub const VMEMMAP_BASE: &str = "vmemmap_base (kallsyms)";
pub const PAGEBLOCK_PFN_TO_PAGE: &str = "pageblock_pfn_to_page";

/// Probes left out unless `--with` names them, and why: they run on a hot path whatever the
/// hotplug activity. The slow-path counter runs once per pageblock of the zone at every
/// online and offline (`set_zone_contiguous` checks them all), and on every compaction step
/// in a zone that is not contiguous: 8-10% of an online/offline cycle in the lab's bench
/// (BENCHMARKS.md), where the rest of mhpscope costs 1-2%.
pub const OFF_BY_DEFAULT: &[(&str, &str)] = &[(
    PAGEBLOCK_PFN_TO_PAGE,
    "runs once per pageblock at every online and offline, and on compaction's hot path",
)];

/// Why `name` is off unless asked for, if it is.
pub fn off_by_default(name: &str) -> Option<&'static str> {
    OFF_BY_DEFAULT
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}
pub const MEMMAP_INIT_RANGE: &str = "memmap_init_range";
pub const MEMMAP_INIT_ZONE_DEVICE: &str = "memmap_init_zone_device";

/// Attached in this order: a `Caller` alternative refers to a probe earlier in the list.
pub const PROBES: &[ProbeSpec] = &[
    ProbeSpec {
        name: "add_memory_resource",
        needs: &["resource.start", "resource.end"],
        shows: "hot-add: physical range, MHP flags, result, duration",
        alternatives: pair!("add_memory_resource", "add_memory_resource"),
    },
    ProbeSpec {
        name: "arch_add_memory",
        needs: &[
            "mhp_params.altmap",
            "vmem_altmap.base_pfn",
            "vmem_altmap.alloc",
            "vmem_altmap.align",
        ],
        shows: "hot-add: real node, altmap (self-hosted memmap) pages",
        alternatives: pair!("arch_add_memory", "arch_add_memory"),
    },
    ProbeSpec {
        name: ADD_PAGES,
        needs: &["mhp_params.altmap"],
        shows: "the window in which a hot-add allocates its memmap (sparse sections)",
        alternatives: pair!(
            "__add_pages",
            "add_pages",
            caller "arch_add_memory",
            "allocations for the direct map's page tables count as memmap"
        ),
    },
    ProbeSpec {
        name: "mm_page_alloc",
        needs: &[],
        shows: "where each hot-add's memmap was allocated: node, bytes, off-node",
        alternatives: &[
            Alternative {
                way: Way::Tracepoint {
                    raw: true,
                    category: "kmem",
                    name: "mm_page_alloc",
                    program: "mm_page_alloc_raw",
                    needs: &["page (size)", VMEMMAP_BASE],
                },
                loses: "",
            },
            Alternative {
                way: Way::Tracepoint {
                    raw: false,
                    category: "kmem",
                    name: "mm_page_alloc",
                    program: "mm_page_alloc",
                    needs: &[
                        "trace_event_raw_mm_page_alloc.pfn",
                        "trace_event_raw_mm_page_alloc.order",
                    ],
                },
                loses: "costs more on every page allocation in the system: the kernel builds the trace record first",
            },
        ],
    },
    ProbeSpec {
        name: "mhp_init_memmap_on_memory",
        needs: ZONE,
        shows: "self-hosted memmap: pfn, vmemmap pages, zone",
        alternatives: pair!("mhp_init_memmap_on_memory", "mhp_init_memmap_on_memory"),
    },
    ProbeSpec {
        name: "online_pages",
        needs: ZONE,
        shows: "online: range, zone, node, result, duration",
        alternatives: pair!("online_pages", "online_pages"),
    },
    ProbeSpec {
        name: "move_pfn_range_to_zone",
        needs: ZONE,
        shows: "zone span growth (and memmap init time where memmap_init_range is notrace)",
        alternatives: pair!("move_pfn_range_to_zone", "move_pfn_range_to_zone"),
    },
    ProbeSpec {
        name: MEMMAP_INIT_RANGE,
        needs: &[],
        shows: "memmap initialisation time of hotplugged RAM, per node",
        alternatives: pair!(
            "memmap_init_range",
            "memmap_init_range",
            caller "move_pfn_range_to_zone",
            "init time includes the zone resize around it"
        ),
    },
    ProbeSpec {
        name: "offline_pages",
        needs: ZONE,
        shows: "offline: range, result, duration",
        alternatives: pair!("offline_pages", "offline_pages"),
    },
    ProbeSpec {
        name: "remove_pfn_range_from_zone",
        needs: ZONE,
        shows: "zone span shrinking",
        alternatives: pair!("remove_pfn_range_from_zone", "remove_pfn_range_from_zone"),
    },
    ProbeSpec {
        name: "set_zone_contiguous",
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
        alternatives: pair!("set_zone_contiguous", "set_zone_contiguous"),
    },
    ProbeSpec {
        name: PAGEBLOCK_PFN_TO_PAGE,
        needs: &[
            "zone.zone_pgdat",
            "zone (size)",
            "pglist_data.node_zones",
            "pglist_data.node_id",
        ],
        shows: "slow-path __pageblock_pfn_to_page calls per zone (per-CPU counters)",
        alternatives: &[
            Alternative {
                way: Way::Entry {
                    method: Method::Fentry,
                    function: "__pageblock_pfn_to_page",
                    program: "pageblock_pfn_to_page_fentry",
                },
                loses: "",
            },
            Alternative {
                way: Way::Entry {
                    method: Method::Kprobe,
                    function: "__pageblock_pfn_to_page",
                    program: "pageblock_pfn_to_page_kprobe",
                },
                loses: "several times the cost per call, on compaction's hot path",
            },
        ],
    },
    ProbeSpec {
        name: "try_remove_memory",
        needs: &[],
        shows: "hot-remove: range, result",
        alternatives: pair!("try_remove_memory", "try_remove_memory"),
    },
    ProbeSpec {
        name: "memremap_pages",
        needs: PGMAP,
        shows: "ZONE_DEVICE ranges created: node, range, pgmap type, altmap",
        alternatives: pair!("memremap_pages", "memremap_pages"),
    },
    ProbeSpec {
        name: "memunmap_pages",
        needs: PGMAP,
        shows: "ZONE_DEVICE ranges torn down",
        alternatives: pair!("memunmap_pages", "memunmap_pages"),
    },
    ProbeSpec {
        name: MEMMAP_INIT_ZONE_DEVICE,
        needs: PGMAP,
        shows: "memmap initialisation of ZONE_DEVICE memory: node, range, pgmap type, altmap, time",
        alternatives: pair!(
            "memmap_init_zone_device",
            "memmap_init_zone_device",
            caller "memremap_pages",
            "init time is memremap_pages' whole time (mapping and sections included)"
        ),
    },
];

/// Whether a probe point attached, how, and if not, why (in plain words).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct ProbeStatus {
    /// The probe point, e.g. "online_pages" (the same name on every kernel).
    pub name: String,
    /// The function (or tracepoint) actually watched.
    pub function: String,
    pub attached: bool,
    /// "fentry/fexit", "kprobe/kretprobe", "raw tracepoint", "tracepoint", "caller <function>"
    /// when attached.
    pub method: Option<String>,
    /// Why not, when nothing attached.
    pub reason: Option<String>,
    /// What the chosen alternative loses compared with the best one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loses: Option<String>,
    /// Better alternatives that were tried first, and why each failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tried: Vec<Attempt>,
}

/// A way of attaching that was tried and failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct Attempt {
    /// How, in the words of `ProbeStatus.method`, e.g. "fentry/fexit".
    pub way: String,
    pub function: String,
    pub error: String,
}

impl ProbeStatus {
    pub fn attached(spec: &ProbeSpec, alt: &Alternative, tried: Vec<Attempt>) -> ProbeStatus {
        ProbeStatus {
            name: spec.name.into(),
            function: alt.way.function(),
            attached: true,
            method: Some(alt.way.describe()),
            reason: None,
            loses: (!alt.loses.is_empty()).then(|| alt.loses.to_string()),
            tried,
        }
    }

    /// Nothing attached; `reason` is the first (best) alternative's failure.
    pub fn failed(spec: &ProbeSpec, reason: impl Into<String>, tried: Vec<Attempt>) -> ProbeStatus {
        ProbeStatus {
            name: spec.name.into(),
            function: spec
                .alternatives
                .first()
                .map(|a| a.way.function())
                .unwrap_or_default(),
            attached: false,
            method: None,
            reason: Some(reason.into()),
            loses: None,
            tried,
        }
    }

    /// Attached through a way that sees the function itself (not a caller's probe).
    pub fn exact(&self) -> bool {
        self.attached && !self.method.as_deref().is_some_and(|m| m.starts_with("caller"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_refer_to_earlier_probes() {
        for (i, spec) in PROBES.iter().enumerate() {
            for alt in spec.alternatives {
                if let Way::Caller { probe, .. } = alt.way {
                    let at = PROBES.iter().position(|p| p.name == probe);
                    assert!(at.is_some_and(|at| at < i), "{}: caller {probe}", spec.name);
                }
            }
            assert!(!spec.alternatives.is_empty());
            assert!(spec.alternatives[0].loses.is_empty());
            assert!(spec.alternatives[1..].iter().all(|a| !a.loses.is_empty()));
        }
    }

    #[test]
    fn probes_off_by_default_exist_and_say_why() {
        for (name, why) in OFF_BY_DEFAULT {
            assert!(PROBES.iter().any(|p| p.name == *name), "{name}");
            assert!(!why.is_empty());
        }
        assert!(off_by_default(PAGEBLOCK_PFN_TO_PAGE).is_some());
        assert!(off_by_default("online_pages").is_none());
    }
}
