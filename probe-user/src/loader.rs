//! Loads the embedded eBPF object, hands it the running kernel's struct offsets, and attaches
//! each probe, recording whether it attached, how, and if not, why.
use std::{io, path::Path};

use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{FEntry, FExit, ProgramError},
    Btf, Ebpf, EbpfLoader,
};
use log::{debug, warn};

use crate::{
    host::Host,
    kernel_btf::{self, KernelBtf, TypeFacts},
    probes::{ProbeSpec, ProbeStatus, PROBES},
};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mhpscope.bpf.o"));

const METHOD: &str = "fentry/fexit";
const ENOTSUPP: i32 = 524;

/// Loaded programs and the maps userspace reads. Dropping it detaches everything.
pub struct Tracer {
    pub probes: Vec<ProbeStatus>,
    pub facts: TypeFacts,
    /// None when nothing could be loaded at all (see `probes` for why).
    ebpf: Option<Ebpf>,
    events: Option<RingBuf<MapData>>,
    _logger: Option<aya_log::EbpfLogger>,
}

impl Tracer {
    pub fn attached(&self) -> usize {
        self.probes.iter().filter(|p| p.attached).count()
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
}

/// Loads and attaches what the running kernel allows. Never fails for a probe that cannot
/// attach: its status says why. Fails only if the kernel's BTF cannot be read at all.
pub fn load(host: &Host) -> Tracer {
    let not_loaded = |reason: &str, facts: TypeFacts| Tracer {
        probes: PROBES.iter().map(|s| ProbeStatus::failed(s, reason)).collect(),
        facts,
        ebpf: None,
        events: None,
        _logger: None,
    };
    let default_facts = || TypeFacts {
        zone_names: kernel_btf::default_zone_names(),
        struct_page_size: 64,
    };
    if !host.btf_available {
        return not_loaded(
            "no BTF: the kernel has no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF off); fentry needs it",
            default_facts(),
        );
    }
    let kbtf = match KernelBtf::load(Path::new(kernel_btf::VMLINUX_BTF)) {
        Ok(b) => b,
        Err(e) => return not_loaded(&format!("no BTF: {e}"), default_facts()),
    };
    let layout = kernel_btf::resolve_layout(&kbtf);
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

    let probes = PROBES
        .iter()
        .map(|spec| {
            let status = attach(&mut ebpf, &aya_btf, &kbtf, &layout.missing, spec, host);
            match &status.reason {
                None => debug!("probe {}: attached with {METHOD}", spec.name),
                Some(r) => warn!("probe {}: not attached: {r}", spec.name),
            }
            status
        })
        .collect();
    let events = ebpf
        .take_map("EVENTS")
        .and_then(|m| RingBuf::try_from(m).map_err(|e| warn!("ring buffer: {e}")).ok());
    Tracer {
        probes,
        facts: layout.facts,
        ebpf: Some(ebpf),
        events,
        _logger: logger,
    }
}

fn attach(
    ebpf: &mut Ebpf,
    btf: &Btf,
    kbtf: &KernelBtf,
    missing: &[String],
    spec: &ProbeSpec,
    host: &Host,
) -> ProbeStatus {
    if let Some(m) = spec.needs.iter().find(|n| missing.iter().any(|m| m == *n)) {
        return ProbeStatus::failed(spec, format!("struct member {m} is not in this kernel's BTF"));
    }
    if !kbtf.has_function(spec.function) {
        return ProbeStatus::failed(
            spec,
            "function is not in this kernel's BTF (inlined, renamed or absent): fentry impossible",
        );
    }
    match attach_pair(ebpf, btf, spec) {
        Ok(()) => ProbeStatus::attached(spec, METHOD),
        Err((stage, e)) => ProbeStatus::failed(spec, explain(stage, &e, host)),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stage {
    Load,
    Attach,
}

fn attach_pair(ebpf: &mut Ebpf, btf: &Btf, spec: &ProbeSpec) -> Result<(), (Stage, ProgramError)> {
    let entry: &mut FEntry = program(ebpf, spec.entry_program)?;
    entry.load(spec.function, btf).map_err(|e| (Stage::Load, e))?;
    let entry_link = entry.attach().map_err(|e| (Stage::Attach, e))?;
    let exit: Result<&mut FExit, _> = program(ebpf, spec.exit_program);
    let result = exit.and_then(|exit| {
        exit.load(spec.function, btf).map_err(|e| (Stage::Load, e))?;
        exit.attach().map(|_| ()).map_err(|e| (Stage::Attach, e))
    });
    if result.is_err() {
        // An entry without its exit would only fill the start map: take it away again.
        if let Ok(entry) = program::<FEntry>(ebpf, spec.entry_program) {
            let _ = entry.detach(entry_link);
        }
    }
    result
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
        _ => return None,
    };
    io.raw_os_error()
}

/// A failure in plain words.
pub fn explain(stage: Stage, e: &ProgramError, host: &Host) -> String {
    let errno = os_error(e);
    match (stage, errno) {
        (_, Some(libc::EPERM | libc::EACCES)) if host.lockdown_blocks_tracing() => {
            "kernel lockdown=confidentiality refuses fentry programs".into()
        }
        (_, Some(libc::EPERM | libc::EACCES)) if !host.can_trace => {
            "needs CAP_BPF and CAP_PERFMON (run as root)".into()
        }
        (Stage::Attach, Some(code @ (libc::EBUSY | libc::EINVAL | ENOTSUPP))) => format!(
            "function is notrace on this kernel (no ftrace entry; trampoline attach refused: {})",
            errno_name(code)
        ),
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
        (Stage::Attach, _) => format!("attach failed: {e}"),
    }
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

    #[test]
    fn reasons_in_plain_words() {
        assert_eq!(
            explain(Stage::Load, &syscall(libc::EPERM), &host("confidentiality", true)),
            "kernel lockdown=confidentiality refuses fentry programs"
        );
        assert_eq!(
            explain(Stage::Load, &syscall(libc::EPERM), &host("none", false)),
            "needs CAP_BPF and CAP_PERFMON (run as root)"
        );
        assert!(explain(Stage::Attach, &syscall(libc::EBUSY), &host("none", true))
            .starts_with("function is notrace"));
        assert!(explain(Stage::Attach, &syscall(ENOTSUPP), &host("none", true)).contains("ENOTSUPP"));
        assert!(
            explain(Stage::Attach, &syscall(libc::ENOMEM), &host("none", true)).starts_with("attach failed")
        );
        let unmounted = Host {
            lockdown: None,
            lockdown_in_kernel_log: true,
            ..host("none", true)
        };
        assert_eq!(
            explain(Stage::Load, &syscall(libc::EPERM), &unmounted),
            "kernel lockdown=confidentiality refuses fentry programs"
        );
    }
}
