//! Loads the embedded eBPF object, hands it the running kernel's struct offsets, and attaches
//! each probe, recording whether it attached, how, and if not, why.
use std::{io, os::fd::OwnedFd, path::Path};

use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{FEntry, FExit, KProbe, ProgramError, RawTracePoint, TracePoint},
    Btf, Ebpf, EbpfLoader,
};
use log::{debug, warn};
use probe_common::{ReportCounts, REPORT_NODES, REPORT_ORDERS, SLOWPATH_SLOTS, ZONES_PER_NODE};

use crate::{
    kernel::decode::DecodeCtx,
    kernel::host::Host,
    kernel::kallsyms,
    kernel::kernel_btf::{self, KernelBtf, TypeFacts},
    kernel::probes::{module_of, INSIDE_REPORT_CYCLE, PAGE_REPORTING_ORDER_SYM, PAGE_REPORTING_PROCESS},
    kernel::probes::{
        off_by_default, Attempt, FailureCoverage, Method, ProbeSpec, ProbeStatus, Way, ADD_PAGES,
        INSIDE_OFFLINE_PAGES, KERNEL_PROGRAM_NAME_LEN, NODE_DATA, NODE_FREE_PAGES, OFFLINE_PAGES, PROBES,
        VMEMMAP_BASE,
    },
    model::event::ZoneId,
    model::ProbeCost,
};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mhpscope.bpf.o"));

const ENOTSUPP: i32 = 524;

/// What the user asked of the loader.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Methods not to use even where they would work (to see or test the fallbacks).
    pub avoid: Vec<Method>,
    /// Probes left out by name.
    pub skip: Vec<String>,
    /// Probes that are off by default (`probes::OFF_BY_DEFAULT`) turned on by name.
    pub with: Vec<String>,
    /// Turn on BPF run-time statistics (BPF_ENABLE_STATS) while mhpscope runs, to show its own
    /// cost. The kernel then counts for every BPF program on the host, not only mhpscope's, and
    /// stops when mhpscope exits: a change to the host, so it is asked for, not a default.
    pub self_cost: bool,
}

/// Loaded programs and the maps userspace reads. Dropping it detaches everything.
pub struct Tracer {
    pub probes: Vec<ProbeStatus>,
    pub facts: TypeFacts,
    /// How the running kernel numbers what the decoder needs.
    pub decode: DecodeCtx,
    /// offline_pages' failure reasons and whether this kernel and these probes tell each apart.
    pub offline_failures: Vec<FailureCoverage>,
    /// None when nothing could be loaded at all (see `probes` for why).
    ebpf: Option<Ebpf>,
    events: Option<RingBuf<MapData>>,
    _logger: Option<aya_log::EbpfLogger>,
    /// Each attached probe's eBPF programs, for their run-time statistics.
    programs: Vec<(String, Vec<&'static str>)>,
    /// Keeps BPF run-time statistics on while we run: the kernel turns them back off (or
    /// leaves them on for whoever else asked) when the last such fd closes, even if we crash.
    _stats: Option<OwnedFd>,
    /// Why run-time statistics could not be enabled, if they could not.
    pub stats_error: Option<String>,
}

impl Tracer {
    pub fn attached(&self) -> usize {
        self.probes.iter().filter(|p| p.attached).count()
    }

    /// Lets the attached programs begin: until now they remembered no call and counted
    /// nothing, so that what was running while they attached one by one is not half seen.
    /// The caller reads its start clock right after.
    pub fn arm(&mut self) -> Result<(), String> {
        let Some(ebpf) = self.ebpf.as_mut() else {
            return Ok(());
        };
        let map = ebpf.map_mut("ARMED").ok_or("no ARMED map")?;
        let mut armed = Array::<_, u32>::try_from(map).map_err(|e| e.to_string())?;
        armed.set(0, 1, 0).map_err(|e| format!("arming the probes: {e}"))
    }

    /// Run count and run time of each attached probe's programs (zero while run-time
    /// statistics are off). Probes attached through a caller run nothing of their own.
    pub fn probe_costs(&self) -> Vec<(String, ProbeCost)> {
        let Some(ebpf) = self.ebpf.as_ref() else {
            return Vec::new();
        };
        self.programs
            .iter()
            .filter(|(_, progs)| !progs.is_empty())
            .map(|(probe, progs)| {
                let mut cost = ProbeCost::default();
                for info in progs.iter().filter_map(|p| ebpf.program(p)?.info().ok()) {
                    cost.runs += info.run_count();
                    cost.run_time_ns += info.run_time().as_nanos() as u64;
                }
                (probe.clone(), cost)
            })
            .collect()
    }

    /// Hands every pending ring-buffer record to `f`.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) {
        if let Some(ring) = self.events.as_mut() {
            while let Some(item) = ring.next() {
                f(&item);
            }
        }
    }

    /// Events the kernel side dropped because the ring buffer was full.
    pub fn lost_events(&self) -> u64 {
        let Some(ebpf) = self.ebpf.as_ref() else { return 0 };
        let Some(map) = ebpf.map("LOST") else { return 0 };
        let Ok(lost) = PerCpuArray::<_, u64>::try_from(map) else {
            return 0;
        };
        lost.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0)
    }

    /// Slow-path `__pageblock_pfn_to_page` calls so far, summed over CPUs, for the zones of
    /// `nodes` that have any.
    pub fn slowpath_calls(&self, nodes: &[i32]) -> Vec<(ZoneId, u64)> {
        let Some(map) = self.ebpf.as_ref().and_then(|e| e.map("SLOWPATH")) else {
            return Vec::new();
        };
        let Ok(counts) = PerCpuArray::<_, u64>::try_from(map) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for &node in nodes {
            if node < 0 || node as u32 >= SLOWPATH_SLOTS / ZONES_PER_NODE {
                continue;
            }
            for zone in 0..ZONES_PER_NODE {
                let slot = node as u32 * ZONES_PER_NODE + zone;
                let n: u64 = counts.get(&slot, 0).map(|v| v.iter().sum()).unwrap_or(0);
                if n > 0 {
                    out.push((
                        ZoneId {
                            node,
                            zone: zone as u8,
                        },
                        n,
                    ));
                }
            }
        }
        out
    }

    /// Free page reporting's per-zone counters so far (summed over CPUs), for the zones of
    /// `nodes` that have any: isolated and put-back blocks per order.
    pub fn reporting_counts(&self, nodes: &[i32]) -> Vec<(ZoneId, ReportCounts)> {
        let Some(map) = self.ebpf.as_ref().and_then(|e| e.map("REPORTED")) else {
            return Vec::new();
        };
        let Ok(counts) = PerCpuArray::<_, ReportCounts>::try_from(map) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for &node in nodes {
            if node < 0 || node as u32 >= REPORT_NODES {
                continue;
            }
            for zone in 0..ZONES_PER_NODE {
                let slot = node as u32 * ZONES_PER_NODE + zone;
                let Ok(per_cpu) = counts.get(&slot, 0) else {
                    continue;
                };
                let mut sum = ReportCounts::default();
                for c in per_cpu.iter() {
                    for o in 0..REPORT_ORDERS {
                        sum.isolated[o] += c.isolated[o];
                        sum.putback[o] += c.putback[o];
                    }
                }
                if sum != ReportCounts::default() {
                    out.push((
                        ZoneId {
                            node,
                            zone: zone as u8,
                        },
                        sum,
                    ));
                }
            }
        }
        out
    }

    /// `__page_reporting_notify` calls so far, summed over CPUs (None: not loaded).
    pub fn reporting_requests(&self) -> Option<u64> {
        let map = self.ebpf.as_ref()?.map("REPORT_REQUESTS")?;
        let counts = PerCpuArray::<_, u64>::try_from(map).ok()?;
        counts.get(&0, 0).ok().map(|v| v.iter().sum())
    }
}

/// Loads and attaches what the running kernel allows. Never fails for a probe that cannot
/// attach: its status says why. Fails only if the kernel's BTF cannot be read at all.
pub fn load(host: &Host, opts: &Options) -> Tracer {
    // A probe the user left out, or one off by default, says so whatever else is wrong.
    let not_loaded = |reason: &str, facts: TypeFacts| Tracer {
        probes: PROBES
            .iter()
            .map(|s| ProbeStatus::failed(s, not_asked(s, opts).unwrap_or_else(|| reason.into()), Vec::new()))
            .collect(),
        facts,
        decode: DecodeCtx::default(),
        offline_failures: Vec::new(),
        ebpf: None,
        events: None,
        _logger: None,
        programs: Vec::new(),
        _stats: None,
        stats_error: None,
    };
    let default_facts = || TypeFacts {
        zone_names: kernel_btf::default_zone_names(),
        struct_page_size: 64,
        page_flags: None,
        features: Default::default(),
        contiguity_from_counter: false,
    };
    if OBJECT.is_empty() {
        return not_loaded(
            "this mhpscope was built without its eBPF programs (cargo feature `ebpf` off): it reads recordings only",
            default_facts(),
        );
    }
    if !host.btf_available {
        return not_loaded(
            "no BTF: the kernel has no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF off); the probes need it",
            default_facts(),
        );
    }
    let kbtf = match KernelBtf::load(Path::new(kernel_btf::VMLINUX_BTF)) {
        Ok(b) => b,
        Err(e) => return not_loaded(&format!("no BTF: {e}"), default_facts()),
    };
    let mut layout = kernel_btf::resolve_layout(&kbtf);
    for (symbol, need, slot) in [
        (
            "vmemmap_base",
            VMEMMAP_BASE,
            &mut layout.offsets.vmemmap_base_addr,
        ),
        ("node_data", NODE_DATA, &mut layout.offsets.node_data_addr),
        (
            "page_reporting_order",
            PAGE_REPORTING_ORDER_SYM,
            &mut layout.offsets.page_reporting_order_addr,
        ),
        (
            "online_policy",
            ONLINE_POLICY_SYM,
            &mut layout.offsets.online_policy_addr,
        ),
        (
            "auto_movable_ratio",
            AUTO_MOVABLE_RATIO_SYM,
            &mut layout.offsets.auto_movable_ratio_addr,
        ),
    ] {
        match kallsyms::address(symbol) {
            Ok(Some(addr)) => *slot = addr,
            Ok(None) => layout.missing.push(need.into()),
            Err(e) => {
                debug!("reading {}: {e}", kallsyms::KALLSYMS);
                layout.missing.push(need.into());
            }
        }
    }
    let aya_btf = match Btf::from_sys_fs() {
        Ok(b) => b,
        Err(e) => return not_loaded(&format!("no BTF: aya cannot parse it: {e}"), layout.facts),
    };
    raise_memlock_limit();

    let mut ebpf = match EbpfLoader::new()
        .btf(Some(&aya_btf))
        .set_global("OFFSETS", &layout.offsets, true)
        .load(OBJECT)
    {
        Ok(e) => e,
        Err(e) => {
            let reason = if !host.can_trace {
                "needs CAP_BPF and CAP_PERFMON (run as root)".to_string()
            } else {
                format!("loading the eBPF object failed: {e}")
            };
            return not_loaded(&reason, layout.facts);
        }
    };
    let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
        Ok(l) => Some(l),
        Err(e) => {
            debug!("kernel-side log unavailable: {e}");
            None
        }
    };

    let mut probes: Vec<ProbeStatus> = Vec::new();
    for spec in PROBES {
        if let Some(why) = not_asked(spec, opts) {
            probes.push(ProbeStatus::failed(spec, why, Vec::new()));
            continue;
        }
        let status = attach(
            &mut ebpf,
            &aya_btf,
            &kbtf,
            &layout.missing,
            spec,
            host,
            opts,
            &probes,
        );
        match (&status.method, &status.reason) {
            (Some(m), _) => debug!(
                "probe {}: attached with {} on {}",
                spec.name,
                m.describe(),
                status.function
            ),
            (_, Some(r)) => warn!("probe {}: not attached: {r}", spec.name),
            _ => {}
        }
        probes.push(status);
    }
    if probes
        .iter()
        .any(|p| p.name == ADD_PAGES && p.attached && !p.exact())
    {
        // __add_pages could not be traced: arch_add_memory opens the allocation window.
        if let Err(e) = set_window_ctl(&mut ebpf, WINDOW_BY_CALLER) {
            warn!("cannot hand the memmap window to arch_add_memory: {e}");
        }
    }
    if probes.iter().any(|p| p.name == NODE_FREE_PAGES && p.attached) {
        if let Err(e) = set_window_ctl(&mut ebpf, WINDOW_NODE_FREE_PAGES) {
            warn!("cannot turn on the node free-page counts: {e}");
        }
    }
    let offline_failures = FailureCoverage::on_kernel(|f| kbtf.has_function(f), &probes);
    let events = ebpf
        .take_map("EVENTS")
        .and_then(|m| RingBuf::try_from(m).map_err(|e| warn!("ring buffer: {e}")).ok());
    let programs = probes
        .iter()
        .filter(|p| p.attached)
        .map(|p| (p.name.clone(), chosen_programs(p)))
        .collect();
    let (stats, stats_error) = if !opts.self_cost {
        (None, Some(SELF_COST_OFF.to_string()))
    } else {
        match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
            Ok(fd) => (Some(fd), None),
            Err(e) => {
                warn!("BPF run-time statistics unavailable: {e}");
                (None, Some(format!("BPF_ENABLE_STATS failed: {e}")))
            }
        }
    };
    Tracer {
        probes,
        facts: layout.facts,
        decode: layout.decode,
        offline_failures,
        ebpf: Some(ebpf),
        events,
        _logger: logger,
        programs,
        _stats: stats,
        stats_error,
    }
}

/// What the mhpscope programs loaded by other processes (a running recorder, top or serve)
/// have cost so far, per probe: found among all loaded programs by name (the kernel keeps the
/// first 15 bytes), our own excluded. Needs the privileges that loading needs.
pub fn running_instance_costs(own: &Tracer) -> Result<std::collections::BTreeMap<String, ProbeCost>, String> {
    let own_ids: Vec<u32> = own
        .ebpf
        .as_ref()
        .map(|e| {
            e.programs()
                .filter_map(|(_, p)| p.info().ok())
                .map(|i| i.id())
                .collect()
        })
        .unwrap_or_default();
    let mut names: Vec<(&[u8], &'static str)> = Vec::new();
    for spec in PROBES {
        for alt in spec.alternatives {
            for prog in alt.way.programs() {
                let b = prog.as_bytes();
                names.push((&b[..b.len().min(KERNEL_PROGRAM_NAME_LEN)], spec.name));
            }
        }
    }
    let mut costs = std::collections::BTreeMap::new();
    for info in aya::programs::loaded_programs() {
        let info = info.map_err(|e| format!("listing loaded BPF programs: {e}"))?;
        if own_ids.contains(&info.id()) {
            continue;
        }
        if let Some((_, probe)) = names.iter().find(|(n, _)| *n == info.name()) {
            let c: &mut ProbeCost = costs.entry(probe.to_string()).or_default();
            c.runs += info.run_count();
            c.run_time_ns += info.run_time().as_nanos() as u64;
        }
    }
    Ok(costs)
}

/// The programs of the alternative a probe attached with.
fn chosen_programs(status: &ProbeStatus) -> Vec<&'static str> {
    PROBES
        .iter()
        .filter(|s| s.name == status.name)
        .flat_map(|s| s.alternatives.iter())
        .find(|a| Some(a.way.method()) == status.method && a.way.function() == status.function)
        .map(|a| a.way.programs())
        .unwrap_or_default()
}

/// `WINDOW_CTL` slots (probe-ebpf): arch_add_memory opens the window; the window reports each
/// node's free pages.
const WINDOW_BY_CALLER: u32 = 1;
const WINDOW_NODE_FREE_PAGES: u32 = 2;

fn set_window_ctl(ebpf: &mut Ebpf, slot: u32) -> Result<(), String> {
    let map = ebpf.map_mut("WINDOW_CTL").ok_or("no WINDOW_CTL map")?;
    let mut ctl = Array::<_, u64>::try_from(map).map_err(|e| e.to_string())?;
    ctl.set(slot, 1, 0).map_err(|e| e.to_string())
}

/// Tries each alternative in order; the first that attaches wins.
#[allow(clippy::too_many_arguments)]
fn attach(
    ebpf: &mut Ebpf,
    btf: &Btf,
    kbtf: &KernelBtf,
    missing: &[String],
    spec: &ProbeSpec,
    host: &Host,
    opts: &Options,
    earlier: &[ProbeStatus],
) -> ProbeStatus {
    if let Some(m) = first_missing(spec.needs, missing) {
        return ProbeStatus::failed(spec, unresolved(m), Vec::new());
    }
    if spec.needs.contains(&INSIDE_OFFLINE_PAGES)
        && !earlier.iter().any(|p| p.name == OFFLINE_PAGES && p.exact())
    {
        return ProbeStatus::failed(
            spec,
            "its events are reported only inside offline_pages/online_pages calls, and the offline_pages probe is not attached",
            Vec::new(),
        );
    }
    if spec.needs.contains(&INSIDE_REPORT_CYCLE)
        && !earlier
            .iter()
            .any(|p| p.name == PAGE_REPORTING_PROCESS && p.exact())
    {
        return ProbeStatus::failed(
            spec,
            "it counts only inside report cycles, and the page_reporting_process probe is not attached",
            Vec::new(),
        );
    }
    let mut tried = Vec::new();
    for alt in spec.alternatives {
        let method = alt.way.method();
        let result = if opts.avoid.contains(&method) {
            Err(format!(
                "{} avoided (--avoid {})",
                method.as_str(),
                method.as_str()
            ))
        } else {
            try_way(ebpf, btf, kbtf, missing, &alt.way, host, earlier)
        };
        match result {
            Ok(()) => return ProbeStatus::attached(spec, alt, tried),
            Err(error) => tried.push(Attempt {
                way: alt.way.method(),
                function: alt.way.function(),
                error,
            }),
        }
    }
    let reason = tried
        .first()
        .map(|a| a.error.clone())
        .unwrap_or_else(|| "no way to attach".into());
    ProbeStatus::failed(spec, reason, tried)
}

/// The first of `needs` that could not be resolved on the running kernel.
fn first_missing<'a>(needs: &[&'a str], missing: &[String]) -> Option<&'a str> {
    needs.iter().copied().find(|n| missing.iter().any(|m| m == n))
}

/// Why a needed member or symbol is unknown, in plain words.
fn unresolved(needed: &str) -> String {
    if needed == NODE_DATA {
        "no address for node_data in /proc/kallsyms (it lists no data symbols without \
         CONFIG_KALLSYMS_ALL, or kptr_restrict hides addresses): no node free-page counts"
            .into()
    } else if needed == VMEMMAP_BASE {
        "no address for vmemmap_base in /proc/kallsyms (it lists no data symbols without \
         CONFIG_KALLSYMS_ALL, the variable exists only on x86-64 with a movable memory layout, \
         or kptr_restrict hides addresses)"
            .into()
    } else {
        format!("struct member {needed} is not in this kernel's BTF")
    }
}

fn try_way(
    ebpf: &mut Ebpf,
    btf: &Btf,
    kbtf: &KernelBtf,
    missing: &[String],
    way: &Way,
    host: &Host,
    earlier: &[ProbeStatus],
) -> Result<(), String> {
    let method = way.method();
    let fail = |(stage, e): (Stage, ProgramError)| explain(method, stage, &e, host);
    match *way {
        Way::Pair {
            method: Method::Fentry,
            function,
            entry,
            exit,
        } => {
            if let Some(module) = module_of(function) {
                return Err(format!(
                    "{function} is in the {module} module: fentry on module functions needs the module's BTF (/sys/kernel/btf/{module}) as attach_btf_obj_fd, which aya 0.13 cannot pass"
                ));
            }
            if !kbtf.has_function(function) {
                return Err(NO_BTF_FUNC.into());
            }
            attach_fentry_pair(ebpf, btf, function, entry, exit).map_err(fail)
        }
        Way::Pair {
            function,
            entry,
            exit,
            ..
        } => attach_kprobe_pair(ebpf, function, entry, exit).map_err(|e| match module_of(function) {
            // A module function exists only while its module is loaded (a built-in one is
            // in /sys/module too once it has parameters; then the kernel's error stands).
            Some(module) if !Path::new("/sys/module").join(module).exists() => format!(
                "the {module} module is not loaded (load it before mhpscope starts: probes attach at start)"
            ),
            _ => fail(e),
        }),
        Way::Entry {
            method: Method::Fentry,
            function,
            program: name,
        } => {
            if !kbtf.has_function(function) {
                return Err(NO_BTF_FUNC.into());
            }
            let p: &mut FEntry = program(ebpf, name).map_err(fail)?;
            p.load(function, btf).map_err(|e| fail((Stage::Load, e)))?;
            p.attach().map(|_| ()).map_err(|e| fail((Stage::Attach, e)))
        }
        Way::Entry {
            function,
            program: name,
            ..
        } => {
            let p: &mut KProbe = program(ebpf, name).map_err(fail)?;
            p.load().map_err(|e| fail((Stage::Load, e)))?;
            p.attach(function, 0)
                .map(|_| ())
                .map_err(|e| fail((Stage::Attach, e)))
        }
        Way::Tracepoint {
            raw,
            category,
            name,
            program: prog,
            needs,
        } => {
            if let Some(m) = first_missing(needs, missing) {
                return Err(unresolved(m));
            }
            attach_tracepoint(ebpf, raw, category, name, prog).map_err(fail)
        }
        Way::Caller { probe, .. } => match earlier.iter().find(|p| p.name == probe) {
            Some(p) if p.attached => Ok(()),
            _ => Err(format!("its caller's probe ({probe}) is not attached either")),
        },
        Way::Via { probe, absent, .. } => {
            if kbtf.has_function(absent) {
                return Err(format!(
                    "{absent} exists on this kernel: only its own probe shows it"
                ));
            }
            match earlier.iter().find(|p| p.name == probe) {
                Some(p) if p.exact() => Ok(()),
                _ => Err(format!("the {probe} probe is not attached either")),
            }
        }
    }
}

const NO_BTF_FUNC: &str = "function is not in this kernel's BTF (inlined, renamed or absent)";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stage {
    Load,
    Attach,
}

fn attach_fentry_pair(
    ebpf: &mut Ebpf,
    btf: &Btf,
    function: &str,
    entry_name: &str,
    exit_name: &str,
) -> Result<(), (Stage, ProgramError)> {
    let entry: &mut FEntry = program(ebpf, entry_name)?;
    entry.load(function, btf).map_err(|e| (Stage::Load, e))?;
    let entry_link = entry.attach().map_err(|e| (Stage::Attach, e))?;
    let exit: Result<&mut FExit, _> = program(ebpf, exit_name);
    let result = exit.and_then(|exit| {
        exit.load(function, btf).map_err(|e| (Stage::Load, e))?;
        exit.attach().map(|_| ()).map_err(|e| (Stage::Attach, e))
    });
    if result.is_err() {
        // An entry without its exit would only fill the start map: take it away again.
        if let Ok(entry) = program::<FEntry>(ebpf, entry_name) {
            let _ = entry.detach(entry_link);
        }
    }
    result
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    raw: bool,
    category: &str,
    name: &str,
    prog: &str,
) -> Result<(), (Stage, ProgramError)> {
    if raw {
        let p: &mut RawTracePoint = program(ebpf, prog)?;
        p.load().map_err(|e| (Stage::Load, e))?;
        p.attach(name).map(|_| ()).map_err(|e| (Stage::Attach, e))
    } else {
        let p: &mut TracePoint = program(ebpf, prog)?;
        p.load().map_err(|e| (Stage::Load, e))?;
        p.attach(category, name)
            .map(|_| ())
            .map_err(|e| (Stage::Attach, e))
    }
}

fn attach_kprobe_pair(
    ebpf: &mut Ebpf,
    function: &str,
    entry_name: &str,
    exit_name: &str,
) -> Result<(), (Stage, ProgramError)> {
    let entry: &mut KProbe = program(ebpf, entry_name)?;
    load_once(entry.load())?;
    let entry_link = entry.attach(function, 0).map_err(|e| (Stage::Attach, e))?;
    let exit: Result<&mut KProbe, _> = program(ebpf, exit_name);
    let result = exit.and_then(|exit| {
        load_once(exit.load())?;
        exit.attach(function, 0)
            .map(|_| ())
            .map_err(|e| (Stage::Attach, e))
    });
    if result.is_err() {
        if let Ok(entry) = program::<KProbe>(ebpf, entry_name) {
            let _ = entry.detach(entry_link);
        }
    }
    result
}

/// A kprobe program is not bound to a function until it attaches: one loaded for an
/// alternative that failed to attach is used as it is.
fn load_once(r: Result<(), ProgramError>) -> Result<(), (Stage, ProgramError)> {
    match r {
        Ok(()) | Err(ProgramError::AlreadyLoaded) => Ok(()),
        Err(e) => Err((Stage::Load, e)),
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, (Stage, ProgramError)>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or((Stage::Load, ProgramError::NotLoaded))?;
    prog.try_into().map_err(|e| (Stage::Load, e))
}

fn os_error(e: &ProgramError) -> Option<i32> {
    let io: &io::Error = match e {
        ProgramError::LoadError { io_error, .. } => io_error,
        ProgramError::SyscallError(s) => &s.io_error,
        // Attach errors of kprobes and tracepoints wrap their io error.
        other => {
            let mut cur: Option<&dyn std::error::Error> = Some(other);
            while let Some(c) = cur {
                if let Some(io) = c.downcast_ref::<io::Error>() {
                    return io.raw_os_error();
                }
                cur = c.source();
            }
            return None;
        }
    };
    io.raw_os_error()
}

/// A failure in plain words.
pub fn explain(method: Method, stage: Stage, e: &ProgramError, host: &Host) -> String {
    let errno = os_error(e);
    match (stage, errno) {
        (_, Some(libc::EPERM | libc::EACCES)) if host.lockdown_blocks_tracing() => {
            format!(
                "kernel lockdown=confidentiality refuses {} programs",
                method.as_str()
            )
        }
        (_, Some(libc::EPERM | libc::EACCES)) if !host.can_trace => {
            "needs CAP_BPF and CAP_PERFMON (run as root)".into()
        }
        (Stage::Attach, Some(code @ (libc::EBUSY | libc::EINVAL | ENOTSUPP))) if method == Method::Fentry => {
            format!(
                "function is notrace on this kernel (no ftrace entry; trampoline attach refused: {})",
                errno_name(code)
            )
        }
        (Stage::Attach, Some(libc::EINVAL)) if method == Method::Kprobe => {
            "function is notrace on this kernel or not a kprobe-able symbol (EINVAL)".into()
        }
        (Stage::Attach, Some(libc::ENOENT)) if method == Method::Kprobe => {
            "no such symbol in kallsyms (ENOENT), or the kernel has no kprobes".into()
        }
        (Stage::Load, _) => match e {
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } => {
                let log = verifier_log.to_string();
                let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                format!("the kernel refused to load the program ({io_error}) {last}")
                    .trim_end()
                    .to_string()
            }
            _ => format!("load failed: {e}"),
        },
        (Stage::Attach, _) => format!("attach failed: {}", error_chain(e)),
    }
}

/// The error and its sources, one line (aya's attach errors wrap the io error).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The verifier's own complaint: the line before its statistics block, which starts with
/// "verification time" (then "stack depth", "processed N insns").
pub fn verifier_error_line(log: &str) -> &str {
    let lines: Vec<&str> = log.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let stats = lines
        .iter()
        .position(|l| l.starts_with("verification time") || l.starts_with("processed "))
        .unwrap_or(lines.len());
    stats.checked_sub(1).map_or("", |i| lines[i])
}

fn errno_name(code: i32) -> &'static str {
    match code {
        libc::EBUSY => "EBUSY",
        libc::EINVAL => "EINVAL",
        ENOTSUPP => "ENOTSUPP",
        _ => "error",
    }
}

/// Kernel variables the block online probe reads, for the policy in force at each online (not
/// needed to attach: without them the policy comes from sysfs at start and end).
pub const ONLINE_POLICY_SYM: &str = "online_policy (kallsyms)";
pub const AUTO_MOVABLE_RATIO_SYM: &str = "auto_movable_ratio (kallsyms)";

/// Why there are no run-time statistics of this mhpscope's own.
pub const SELF_COST_OFF: &str =
    "off: --self-cost turns on the kernel's BPF run-time statistics while mhpscope runs";

/// Why a probe is not tried at all: left out with --skip, or off by default and not asked for.
fn not_asked(spec: &ProbeSpec, opts: &Options) -> Option<String> {
    if opts.skip.iter().any(|s| s == spec.name) {
        return Some(format!("left out (--skip {})", spec.name));
    }
    off_by_default(spec.name)
        .filter(|_| !opts.with.iter().any(|w| w == spec.name))
        .map(|why| format!("off by default: {why} (--with {} turns it on)", spec.name))
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        debug!("could not raise RLIMIT_MEMLOCK: {}", io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aya::sys::SyscallError;

    fn host(lockdown: &str, can_trace: bool) -> Host {
        Host {
            kernel_release: "test".into(),
            lockdown: Some(lockdown.into()),
            lockdown_in_kernel_log: false,
            btf_available: true,
            can_trace,
        }
    }

    /// Every program a way of the probe table loads is in the embedded object (a renamed or
    /// forgotten program would only show as "program not found" on a real kernel), and the
    /// object has no program that no way loads.
    #[cfg(feature = "ebpf")]
    #[test]
    fn the_probe_table_and_the_object_name_the_same_programs() {
        let obj = aya_obj::Object::parse(OBJECT).expect("the embedded object parses");
        let mut named = std::collections::BTreeSet::new();
        for spec in PROBES {
            for alt in spec.alternatives {
                for program in alt.way.programs() {
                    assert!(
                        obj.programs.contains_key(program),
                        "{}: program {program} is not in the object",
                        spec.name
                    );
                    named.insert(program.to_string());
                }
            }
        }
        let unused: Vec<&String> = obj.programs.keys().filter(|p| !named.contains(*p)).collect();
        assert!(unused.is_empty(), "programs no probe loads: {unused:?}");
    }

    fn syscall(errno: i32) -> ProgramError {
        ProgramError::SyscallError(SyscallError {
            call: "bpf_raw_tracepoint_open",
            io_error: io::Error::from_raw_os_error(errno),
        })
    }

    #[test]
    fn verifier_complaint_not_its_statistics() {
        let log = "0: (79) r7 = *(u64 *)(r1 +16)\n12: (1f) r9 -= r2\nmath between ptr_ pointer and register with unbounded min value is not allowed\nverification time 120 usec\nstack depth 0\nprocessed 13 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 1\n";
        assert_eq!(
            verifier_error_line(log),
            "math between ptr_ pointer and register with unbounded min value is not allowed"
        );
        assert_eq!(verifier_error_line("only this\n"), "only this");
        assert_eq!(verifier_error_line(""), "");
    }

    /// A way's own needs decide it: the raw page-allocation tracepoint is passed over when the
    /// kernel hides vmemmap_base, and the classic one, which needs BTF members instead, is not.
    #[test]
    fn a_way_that_needs_what_is_missing_says_what() {
        let missing = vec![VMEMMAP_BASE.to_string()];
        let spec = PROBES.iter().find(|p| p.name == "mm_page_alloc").unwrap();
        let needs: Vec<_> = spec
            .alternatives
            .iter()
            .map(|a| match a.way {
                Way::Tracepoint { needs, .. } => first_missing(needs, &missing),
                _ => panic!("mm_page_alloc has tracepoint ways only"),
            })
            .collect();
        assert_eq!(needs, [Some(VMEMMAP_BASE), None]);
        assert!(unresolved(VMEMMAP_BASE).contains("/proc/kallsyms"));
        assert_eq!(
            unresolved("zone.contiguous"),
            "struct member zone.contiguous is not in this kernel's BTF"
        );
    }

    #[test]
    fn reasons_in_plain_words() {
        assert_eq!(
            explain(
                Method::Fentry,
                Stage::Load,
                &syscall(libc::EPERM),
                &host("confidentiality", true)
            ),
            "kernel lockdown=confidentiality refuses fentry programs"
        );
        assert_eq!(
            explain(
                Method::Kprobe,
                Stage::Attach,
                &syscall(libc::EPERM),
                &host("confidentiality", true)
            ),
            "kernel lockdown=confidentiality refuses kprobe programs"
        );
        assert!(explain(
            Method::Kprobe,
            Stage::Attach,
            &syscall(libc::EINVAL),
            &host("none", true)
        )
        .contains("notrace"));
        assert_eq!(
            explain(
                Method::Fentry,
                Stage::Load,
                &syscall(libc::EPERM),
                &host("none", false)
            ),
            "needs CAP_BPF and CAP_PERFMON (run as root)"
        );
        assert!(explain(
            Method::Fentry,
            Stage::Attach,
            &syscall(libc::EBUSY),
            &host("none", true)
        )
        .starts_with("function is notrace"));
        assert!(explain(
            Method::Fentry,
            Stage::Attach,
            &syscall(ENOTSUPP),
            &host("none", true)
        )
        .contains("ENOTSUPP"));
        assert!(explain(
            Method::Fentry,
            Stage::Attach,
            &syscall(libc::ENOMEM),
            &host("none", true)
        )
        .starts_with("attach failed"));
        let unmounted = Host {
            lockdown: None,
            lockdown_in_kernel_log: true,
            ..host("none", true)
        };
        assert_eq!(
            explain(Method::Fentry, Stage::Load, &syscall(libc::EPERM), &unmounted),
            "kernel lockdown=confidentiality refuses fentry programs"
        );
    }
}
