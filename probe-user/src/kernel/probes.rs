//! The probe set: what each probe point shows, the ordered ways to attach it (fentry, kprobe,
//! a traceable caller, a tracepoint), and its status on the running kernel.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::attempts::FailReason;

/// How a probe point is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// fentry/fexit: a BPF trampoline (cheapest; needs BTF and an ftrace entry).
    Fentry,
    /// kprobe/kretprobe.
    Kprobe,
    /// A raw tracepoint: the program gets the tracepoint's arguments.
    #[value(name = "raw_tracepoint")]
    RawTracepoint,
    /// A classic tracepoint: the program reads the record the kernel builds.
    Tracepoint,
    /// No program of its own: a caller's probe carries the data.
    Caller,
    /// No program of its own, and no such function on this kernel: another probe carries
    /// what this one would on newer kernels.
    #[value(skip)]
    Via,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Fentry => "fentry",
            Method::Kprobe => "kprobe",
            Method::RawTracepoint => "raw_tracepoint",
            Method::Tracepoint => "tracepoint",
            Method::Caller => "caller",
            Method::Via => "via",
        }
    }

    /// In the words `mhpscope probes` prints.
    pub fn describe(self) -> &'static str {
        match self {
            Method::Fentry => "fentry",
            Method::Kprobe => "kprobe",
            Method::RawTracepoint => "raw tracepoint",
            Method::Tracepoint => "tracepoint",
            Method::Caller => "caller",
            Method::Via => "via",
        }
    }

    /// Sees the function itself, with a program of its own.
    pub fn is_own_program(self) -> bool {
        !matches!(self, Method::Caller | Method::Via)
    }

    /// A method as recordings name it: the snake_case name, or the words recordings of format
    /// 1 (and early format 2) used: "fentry/fexit", "raw tracepoint", "caller move_pfn_...".
    pub fn from_recorded(text: &str) -> Option<Method> {
        let first = text.split_whitespace().next()?;
        Some(match first {
            "fentry" | "fentry/fexit" => Method::Fentry,
            "kprobe" | "kprobe/kretprobe" => Method::Kprobe,
            "raw_tracepoint" => Method::RawTracepoint,
            "raw" if text == "raw tracepoint" => Method::RawTracepoint,
            "tracepoint" => Method::Tracepoint,
            "caller" => Method::Caller,
            "via" => Method::Via,
            _ => return None,
        })
    }
}

/// Reads a method in any of the forms recordings have used.
fn recorded_method<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Method>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| {
        Method::from_recorded(&t)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown attach method {t:?}")))
    })
    .transpose()
}

fn recorded_way<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
    let text = String::deserialize(d)?;
    Method::from_recorded(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown attach method {text:?}")))
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
    /// On kernels without `absent` (older ones), the probe point `probe` (attached, on
    /// `function`) carries what `absent` carries on newer kernels. Refused where `absent` exists:
    /// there the probe's own ways must attach.
    Via {
        probe: &'static str,
        function: &'static str,
        absent: &'static str,
    },
}

impl Way {
    /// The eBPF programs this way runs in the kernel (a caller's probe runs none of its own).
    pub fn programs(&self) -> Vec<&'static str> {
        match *self {
            Way::Pair { entry, exit, .. } => vec![entry, exit],
            Way::Entry { program, .. } | Way::Tracepoint { program, .. } => vec![program],
            Way::Caller { .. } | Way::Via { .. } => Vec::new(),
        }
    }

    pub fn method(&self) -> Method {
        match *self {
            Way::Pair { method, .. } | Way::Entry { method, .. } => method,
            Way::Tracepoint { raw: true, .. } => Method::RawTracepoint,
            Way::Tracepoint { raw: false, .. } => Method::Tracepoint,
            Way::Caller { .. } => Method::Caller,
            Way::Via { .. } => Method::Via,
        }
    }

    pub fn function(&self) -> String {
        match *self {
            Way::Pair { function, .. }
            | Way::Entry { function, .. }
            | Way::Caller { function, .. }
            | Way::Via { function, .. } => function.to_string(),
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
            Way::Via { function, absent, .. } => format!("via {function} (no {absent} on this kernel)"),
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
/// The kallsyms symbol `node_data` (x86-64: `struct pglist_data *node_data[]`): what the node
/// free-page counts need.
pub const NODE_DATA: &str = "node_data (kallsyms)";
pub const NODE_FREE_PAGES: &str = "node_free_pages";
/// A `needs` entry naming a probe that must have attached through a way that sees its function
/// itself: the sub-step probes report only inside `offline_pages`/`online_pages` calls.
pub const INSIDE_OFFLINE_PAGES: &str = "offline_pages (attached)";
pub const OFFLINE_PAGES: &str = "offline_pages";

/// What the memory_block probes read.
const MEMORY_BLOCK: &[&str] = &[
    "memory_block.dev",
    "memory_block.start_section_nr",
    "memory_block.online_type",
    "memory_block.nid",
    "memory_block.zone",
    "zone.zone_pgdat",
    "zone (size)",
    "pglist_data.node_zones",
    "pglist_data.node_id",
];

/// What a sub-step of offline_pages needs (besides its own members).
const IN_OFFLINE: &[&str] = &[INSIDE_OFFLINE_PAGES];
pub const MEMMAP_INIT_ZONE_DEVICE: &str = "memmap_init_zone_device";

/// Free page reporting's probes.
pub const PAGE_REPORTING_PROCESS: &str = "page_reporting_process";
pub const PAGE_REPORT: &str = "free_page_report";
pub const PAGE_REPORTING_REGISTER: &str = "page_reporting_register";
pub const ISOLATE_FREE_PAGE: &str = "isolate_free_page";
pub const PUTBACK_ISOLATED_PAGE: &str = "putback_isolated_page";
pub const PAGE_REPORTING_NOTIFY: &str = "page_reporting_notify";
/// A `needs` entry: the counters count only inside report cycles, which the
/// page_reporting_process probe opens and closes.
pub const INSIDE_REPORT_CYCLE: &str = "page_reporting_process (attached)";
/// The kallsyms symbol `page_reporting_order` (a data symbol: CONFIG_KALLSYMS_ALL).
pub const PAGE_REPORTING_ORDER_SYM: &str = "page_reporting_order (kallsyms)";
/// The sysfs parameter userspace reads the reporting order from.
pub const PAGE_REPORTING_ORDER_PARAM: &str = "/sys/module/page_reporting/parameters/page_reporting_order";

/// Traced functions that live in a module, and the module: they exist only while it is
/// loaded, and mhpscope's fentry programs cannot attach to them (aya 0.13's `FEntry::load`
/// resolves the function in vmlinux's BTF and cannot pass the module's BTF object,
/// `/sys/kernel/btf/<module>`, as `attach_btf_obj_fd`), so their kprobe pair is the way.
pub const MODULE_FUNCTIONS: &[(&str, &str)] = &[("virtballoon_free_page_report", "virtio_balloon")];

/// The module a traced function lives in, if it is a module function.
pub fn module_of(function: &str) -> Option<&'static str> {
    MODULE_FUNCTIONS
        .iter()
        .find(|(f, _)| *f == function)
        .map(|(_, m)| *m)
}

const REPORT_COUNTERS: &[&str] = &[
    INSIDE_REPORT_CYCLE,
    "page.flags",
    crate::kernel::kernel_btf::PAGE_FLAGS_ZONE,
];

/// The per-CPU counter programs of one entry-only function: fentry, then kprobe.
macro_rules! entry_counter {
    ($func:literal, $prefix:literal, $loses:literal) => {
        &[
            Alternative {
                way: Way::Entry {
                    method: Method::Fentry,
                    function: $func,
                    program: concat!($prefix, "_fentry"),
                },
                loses: "",
            },
            Alternative {
                way: Way::Entry {
                    method: Method::Kprobe,
                    function: $func,
                    program: concat!($prefix, "_kprobe"),
                },
                loses: $loses,
            },
        ]
    };
}

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
        name: NODE_FREE_PAGES,
        needs: &[
            NODE_DATA,
            "zone.vm_stat",
            crate::kernel::kernel_btf::NR_FREE_PAGES,
            crate::kernel::kernel_btf::MAX_NR_ZONES,
            "zone (size)",
            "pglist_data.node_zones",
        ],
        shows: "each node's free pages as a hot-add starts allocating its memmap and after (read by the __add_pages programs)",
        alternatives: &[Alternative {
            way: Way::Caller {
                probe: ADD_PAGES,
                function: ADD_PAGES,
            },
            loses: "",
        }],
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
        name: "memory_subsys_online",
        needs: MEMORY_BLOCK,
        shows: "block online attempts: block, requested online type, node, zone, result (refusals before online_pages too)",
        alternatives: pair!("memory_subsys_online", "subsys_online"),
    },
    ProbeSpec {
        name: "memory_subsys_offline",
        needs: MEMORY_BLOCK,
        shows: "block offline attempts: block, node, zone, result (blocks with no single zone are refused here)",
        alternatives: pair!("memory_subsys_offline", "subsys_offline"),
    },
    ProbeSpec {
        name: "memory_notify",
        needs: IN_OFFLINE,
        shows: "the memory notifier chain inside online_pages/offline_pages: action, errno (\"notifier failure\")",
        alternatives: pair!("memory_notify", "memory_notify"),
    },
    ProbeSpec {
        name: "walk_system_ram_range",
        needs: IN_OFFLINE,
        shows: "offline_pages' System RAM count of the range (fewer pages than the range: \"memory holes\")",
        alternatives: pair!("walk_system_ram_range", "walk_system_ram_range"),
    },
    ProbeSpec {
        name: "start_isolate_page_range",
        needs: IN_OFFLINE,
        shows: "isolation of the range inside offline_pages: result (EBUSY: \"failure to isolate range\")",
        alternatives: pair!("start_isolate_page_range", "start_isolate_page_range"),
    },
    ProbeSpec {
        name: "node_notify",
        needs: IN_OFFLINE,
        shows: "the node notifier chain inside online_pages/offline_pages (7.x): action, errno (\"node notifier failure\")",
        alternatives: &[
            Alternative {
                way: Way::Pair {
                    method: Method::Fentry,
                    function: "node_notify",
                    entry: "node_notify_fentry",
                    exit: "node_notify_fexit",
                },
                loses: "",
            },
            Alternative {
                way: Way::Pair {
                    method: Method::Kprobe,
                    function: "node_notify",
                    entry: "node_notify_kprobe",
                    exit: "node_notify_kretprobe",
                },
                loses: KPROBE_LOSES,
            },
            Alternative {
                way: Way::Via {
                    probe: "memory_notify",
                    function: "memory_notify",
                    absent: "node_notify",
                },
                loses: "nothing: kernels before the node notifier announce node changes in memory_notify's arguments, and no \"node notifier failure\" exists",
            },
        ],
    },
    ProbeSpec {
        name: "dissolve_free_huge_pages",
        needs: IN_OFFLINE,
        shows: "the hugetlb dissolve step inside offline_pages: result (\"failure to dissolve huge pages\")",
        alternatives: &[
            Alternative {
                way: Way::Pair {
                    method: Method::Fentry,
                    function: "dissolve_free_hugetlb_folios",
                    entry: "dissolve_free_hugetlb_folios_fentry",
                    exit: "dissolve_free_hugetlb_folios_fexit",
                },
                loses: "",
            },
            Alternative {
                way: Way::Pair {
                    method: Method::Fentry,
                    function: "dissolve_free_huge_pages",
                    entry: "dissolve_free_huge_pages_fentry",
                    exit: "dissolve_free_huge_pages_fexit",
                },
                loses: "nothing: the same step under its older name (6.1)",
            },
            Alternative {
                way: Way::Pair {
                    method: Method::Kprobe,
                    function: "dissolve_free_hugetlb_folios",
                    entry: "dissolve_free_hugetlb_folios_kprobe",
                    exit: "dissolve_free_hugetlb_folios_kretprobe",
                },
                loses: KPROBE_LOSES,
            },
            Alternative {
                way: Way::Pair {
                    method: Method::Kprobe,
                    function: "dissolve_free_huge_pages",
                    entry: "dissolve_free_huge_pages_kprobe",
                    exit: "dissolve_free_huge_pages_kretprobe",
                },
                loses: KPROBE_LOSES,
            },
        ],
    },
    ProbeSpec {
        name: "dump_page",
        needs: &[
            INSIDE_OFFLINE_PAGES,
            "page (size)",
            VMEMMAP_BASE,
            "page.flags",
            "page._refcount",
            "page._mapcount",
            "page.page_type",
        ],
        shows: "pages the kernel dumps inside online_pages/offline_pages (\"unmovable page\", \"migration failure\"): pfn, flags, counts, page type, reason",
        alternatives: pair!("dump_page", "dump_page"),
    },
    ProbeSpec {
        name: "test_pages_isolated",
        needs: &[
            INSIDE_OFFLINE_PAGES,
            "trace_event_raw_test_pages_isolated.start_pfn",
            "trace_event_raw_test_pages_isolated.end_pfn",
            "trace_event_raw_test_pages_isolated.fin_pfn",
        ],
        shows: "offline_pages' isolation test after each migration pass: the first pfn still busy",
        alternatives: &[Alternative {
            way: Way::Tracepoint {
                raw: false,
                category: "page_isolation",
                name: "test_pages_isolated",
                program: "test_pages_isolated_tp",
                needs: &[],
            },
            loses: "",
        }],
    },
    ProbeSpec {
        name: "mm_migrate_pages",
        needs: &[
            INSIDE_OFFLINE_PAGES,
            "trace_event_raw_mm_migrate_pages.succeeded",
            "trace_event_raw_mm_migrate_pages.failed",
            "trace_event_raw_mm_migrate_pages.reason",
        ],
        shows: "each migration pass inside offline_pages: pages migrated and failed (elsewhere: one array read)",
        alternatives: &[Alternative {
            way: Way::Tracepoint {
                raw: false,
                category: "migrate",
                name: "mm_migrate_pages",
                program: "mm_migrate_pages_tp",
                needs: &[],
            },
            loses: "",
        }],
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
        name: PAGE_REPORTING_REGISTER,
        needs: &["page_reporting_dev_info.order"],
        shows: "free page reporting device registered: the order chosen (page_reporting_order, from /proc/kallsyms), the device's order and capacity",
        alternatives: pair!("page_reporting_register", "report_register"),
    },
    ProbeSpec {
        name: PAGE_REPORTING_PROCESS,
        needs: &[],
        shows: "free page reporting cycles: duration, reports, bytes and pages handed to the host (opens the per-CPU gate of the isolate/put-back counters)",
        alternatives: pair!("page_reporting_process", "report_cycle"),
    },
    ProbeSpec {
        name: PAGE_REPORT,
        needs: &[
            "scatterlist (size)",
            "scatterlist.length",
            "scatterlist.page_link",
            "page.flags",
            crate::kernel::kernel_btf::PAGE_FLAGS_ZONE,
        ],
        shows: "each report to the host (virtio-balloon): scatterlist entries, bytes, zone, orders, and the time the guest waited for the host's ack",
        alternatives: &[
            Alternative {
                way: Way::Pair {
                    method: Method::Fentry,
                    function: "virtballoon_free_page_report",
                    entry: "free_page_report_fentry",
                    exit: "free_page_report_fexit",
                },
                loses: "",
            },
            Alternative {
                way: Way::Pair {
                    method: Method::Kprobe,
                    function: "virtballoon_free_page_report",
                    entry: "free_page_report_kprobe",
                    exit: "free_page_report_kretprobe",
                },
                loses: "a kprobe pair: the callback is in the virtio_balloon module and aya 0.13 cannot attach fentry to module functions (no module BTF as attach_btf_obj_fd); about 0.1 µs more per report, nothing lost",
            },
        ],
    },
    ProbeSpec {
        name: ISOLATE_FREE_PAGE,
        needs: REPORT_COUNTERS,
        shows: "pages isolated for reporting per zone and order (per-CPU counters, only inside report cycles: elsewhere one per-CPU read)",
        alternatives: entry_counter!(
            "__isolate_free_page",
            "isolate_free_page",
            "several times the cost per call, also on compaction's calls outside report cycles"
        ),
    },
    ProbeSpec {
        name: PUTBACK_ISOLATED_PAGE,
        needs: REPORT_COUNTERS,
        shows: "reported pages put back on the free lists per zone and order (per-CPU counters, only inside report cycles)",
        alternatives: entry_counter!(
            "__putback_isolated_page",
            "putback_isolated_page",
            "several times the cost per call, also on page isolation's calls outside report cycles"
        ),
    },
    ProbeSpec {
        name: PAGE_REPORTING_NOTIFY,
        needs: &[],
        shows: "how often free page reporting is requested (frees at or above page_reporting_order; a per-CPU counter)",
        alternatives: entry_counter!(
            "__page_reporting_notify",
            "report_notify",
            "several times the cost per call, on frees of large blocks"
        ),
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

/// One way `offline_pages` fails, the step of it that reveals the failure, and what that needs.
pub struct OfflineFailure {
    pub reason: FailReason,
    /// The step, in the kernel's order, and how its events tell.
    pub step: &'static str,
    /// Probes whose events reveal it (besides `offline_pages` itself).
    pub probes: &'static [&'static str],
    /// The kernels that have the step, as checked in their sources.
    pub kernels: &'static str,
    /// A function that exists only on kernels that have the step (None: every kernel has it).
    pub only_with: Option<&'static str>,
}

/// `offline_pages`' failure reasons (its local `reason`, printed only by pr_debug) in the order
/// of its steps, and the step that reveals each (mm/memory_hotplug.c of 6.1, 6.12 and 7.2).
pub const OFFLINE_FAILURES: &[OfflineFailure] = &[
    OfflineFailure {
        reason: FailReason::MemoryHoles,
        step: "walk_system_ram_range counted fewer System RAM pages than the range (EINVAL)",
        probes: &["walk_system_ram_range"],
        kernels: "6.1, 6.12, 7.x",
        only_with: None,
    },
    OfflineFailure {
        reason: FailReason::MultizoneRange,
        step: "EINVAL before isolation with no holes counted (an inline page_zone check)",
        probes: &["walk_system_ram_range", "start_isolate_page_range"],
        kernels: "6.1, 6.12, 7.x",
        only_with: None,
    },
    OfflineFailure {
        reason: FailReason::FailureToIsolateRange,
        step: "start_isolate_page_range failed (EBUSY), usually after dump_page(\"unmovable page\")",
        probes: &["start_isolate_page_range"],
        kernels: "6.1, 6.12, 7.x",
        only_with: None,
    },
    OfflineFailure {
        reason: FailReason::NodeNotifierFailure,
        step: "node_notify(NODE_REMOVING_LAST_MEMORY) refused (after isolation, before the memory notifier)",
        probes: &["node_notify"],
        kernels: "7.x",
        only_with: Some("node_notify"),
    },
    OfflineFailure {
        reason: FailReason::NotifierFailure,
        step: "memory_notify(MEM_GOING_OFFLINE) refused (the errno a notifier gave)",
        probes: &["memory_notify"],
        kernels: "6.1, 6.12, 7.x",
        only_with: None,
    },
    OfflineFailure {
        reason: FailReason::SignalBackoff,
        step: "EINTR after the notifiers agreed (a signal was pending in the migration loop)",
        probes: &["memory_notify"],
        kernels: "6.1, 6.12, 7.x",
        only_with: None,
    },
    OfflineFailure {
        reason: FailReason::UnmovablePage,
        step: "EBUSY from the scan after isolation, with no dissolve failure (a referenced PageOffline page)",
        probes: &[
            "start_isolate_page_range",
            "memory_notify",
            "dissolve_free_huge_pages",
        ],
        kernels: "6.1, 6.12, 7.x",
        only_with: None,
    },
    OfflineFailure {
        reason: FailReason::FailureToDissolveHugePages,
        step: "dissolve_free_huge_pages / dissolve_free_hugetlb_folios failed (EBUSY, ENOMEM)",
        probes: &["dissolve_free_huge_pages"],
        kernels: "6.1, 6.12, 7.x",
        only_with: None,
    },
];

/// One `OFFLINE_FAILURES` row on the running kernel: whether mhpscope can tell that reason here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct FailureCoverage {
    pub reason: FailReason,
    /// The kernel's own words, e.g. "failure to isolate range".
    pub kernel_words: String,
    pub step: String,
    pub probes: Vec<String>,
    pub kernels: String,
    /// False when the running kernel has no such step (e.g. no node notifier before 7.x).
    pub step_on_this_kernel: bool,
    /// Needed probes (offline_pages included) that are not attached, or attached only through
    /// another function.
    pub probes_missing: Vec<String>,
}

impl FailureCoverage {
    /// The rows on a kernel, given which functions it has and the probes' status.
    pub fn on_kernel(has_function: impl Fn(&str) -> bool, probes: &[ProbeStatus]) -> Vec<FailureCoverage> {
        OFFLINE_FAILURES
            .iter()
            .map(|f| {
                let attached = |name: &str| probes.iter().any(|p| p.name == name && p.exact());
                let probes_missing = std::iter::once(OFFLINE_PAGES)
                    .chain(f.probes.iter().copied())
                    .filter(|p| !attached(p))
                    .map(String::from)
                    .collect();
                FailureCoverage {
                    reason: f.reason,
                    kernel_words: f.reason.kernel_words().into(),
                    step: f.step.into(),
                    probes: f.probes.iter().map(|p| p.to_string()).collect(),
                    kernels: f.kernels.into(),
                    step_on_this_kernel: f.only_with.is_none_or(&has_function),
                    probes_missing,
                }
            })
            .collect()
    }

    /// "ready", or what the running kernel or mhpscope lacks for it.
    pub fn status(&self) -> String {
        if !self.step_on_this_kernel {
            return format!("no such step on this kernel ({} only)", self.kernels);
        }
        if self.probes_missing.is_empty() {
            "told apart".into()
        } else {
            format!("not told apart: {} not attached", self.probes_missing.join(", "))
        }
    }
}

/// How the running kernel keeps `zone->contiguous` up to date, in the words `mhpscope probes`
/// prints.
pub fn contiguity_note(from_counter: bool) -> &'static str {
    if from_counter {
        "this kernel computes contiguity from zone->pages_with_online_memmap; set_zone_contiguous is not on the hotplug path"
    } else {
        "this kernel recomputes contiguity in set_zone_contiguous on every resize"
    }
}

/// Whether a probe point attached, how, and if not, why (in plain words).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct ProbeStatus {
    /// The probe point, e.g. "online_pages" (the same name on every kernel).
    pub name: String,
    /// The function (or tracepoint) actually watched.
    pub function: String,
    pub attached: bool,
    /// How, when attached (`function` says on what).
    #[serde(deserialize_with = "recorded_method")]
    pub method: Option<Method>,
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
    #[serde(deserialize_with = "recorded_way")]
    pub way: Method,
    pub function: String,
    pub error: String,
}

impl ProbeStatus {
    /// How it attached, in words: "fentry online_pages", "caller move_pfn_range_to_zone".
    pub fn how(&self) -> Option<String> {
        self.method.map(|m| format!("{} {}", m.describe(), self.function))
    }

    pub fn attached(spec: &ProbeSpec, alt: &Alternative, tried: Vec<Attempt>) -> ProbeStatus {
        ProbeStatus {
            name: spec.name.into(),
            function: alt.way.function(),
            attached: true,
            method: Some(alt.way.method()),
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
        self.attached && self.method.is_some_and(Method::is_own_program)
    }
}

/// The kernel keeps a BPF program's name to this many bytes (BPF_OBJ_NAME_LEN - 1): what
/// `mhpscope probes` matches other instances' programs by.
pub const KERNEL_PROGRAM_NAME_LEN: usize = 15;

#[cfg(test)]
mod tests {

    /// Another running instance's programs are found by the name the kernel kept: no two
    /// probes' programs may share it, or one probe's runs are shown as another's.
    #[test]
    fn program_names_stay_apart_in_the_kernels_15_bytes() {
        let mut owner: std::collections::BTreeMap<&str, &str> = Default::default();
        for spec in PROBES {
            for alt in spec.alternatives {
                for prog in alt.way.programs() {
                    let kept = &prog[..prog.len().min(KERNEL_PROGRAM_NAME_LEN)];
                    let first = *owner.entry(kept).or_insert(spec.name);
                    assert_eq!(
                        first, spec.name,
                        "{prog} of {} is kept as {kept:?}, as a program of {first} is",
                        spec.name
                    );
                }
            }
        }
    }
    use super::*;

    #[test]
    fn callers_refer_to_earlier_probes() {
        for (i, spec) in PROBES.iter().enumerate() {
            for alt in spec.alternatives {
                if let Way::Caller { probe, .. } | Way::Via { probe, .. } = alt.way {
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
    fn failure_reasons_name_real_probes_and_every_reason_once() {
        for f in OFFLINE_FAILURES {
            for p in f.probes {
                assert!(PROBES.iter().any(|s| s.name == *p), "{p}");
            }
        }
        let mut reasons: Vec<_> = OFFLINE_FAILURES.iter().map(|f| f.reason).collect();
        reasons.dedup();
        assert_eq!(reasons.len(), 8);
    }

    #[test]
    fn failure_coverage_says_what_the_kernel_lacks() {
        let spec = |name: &str| PROBES.iter().find(|p| p.name == name).unwrap();
        let all: Vec<ProbeStatus> = PROBES
            .iter()
            .filter(|p| p.name != "node_notify")
            .map(|p| ProbeStatus::attached(p, &p.alternatives[0], vec![]))
            .chain([ProbeStatus::attached(
                spec("node_notify"),
                &spec("node_notify").alternatives[2],
                vec![],
            )])
            .collect();
        // 6.1/6.12: no node_notify; its probe stands in through memory_notify.
        let rows = FailureCoverage::on_kernel(|f| f != "node_notify", &all);
        let node = rows
            .iter()
            .find(|r| r.reason == FailReason::NodeNotifierFailure)
            .unwrap();
        assert!(!node.step_on_this_kernel);
        assert!(node.status().starts_with("no such step on this kernel"));
        let isolate = rows
            .iter()
            .find(|r| r.reason == FailReason::FailureToIsolateRange)
            .unwrap();
        assert_eq!(isolate.status(), "told apart");
        assert_eq!(isolate.kernel_words, "failure to isolate range");
        // A probe not attached is named.
        let without: Vec<ProbeStatus> = all
            .iter()
            .map(|p| {
                if p.name == "walk_system_ram_range" {
                    ProbeStatus::failed(spec("walk_system_ram_range"), "test", vec![])
                } else {
                    p.clone()
                }
            })
            .collect();
        let rows = FailureCoverage::on_kernel(|_| true, &without);
        let holes = rows.iter().find(|r| r.reason == FailReason::MemoryHoles).unwrap();
        assert_eq!(holes.probes_missing, ["walk_system_ram_range"]);
        assert!(holes.status().contains("walk_system_ram_range not attached"));
        assert!(rows
            .iter()
            .find(|r| r.reason == FailReason::NodeNotifierFailure)
            .unwrap()
            .probes_missing
            .contains(&"node_notify".to_string()));
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
