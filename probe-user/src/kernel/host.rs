//! Facts about the running kernel and our privileges that decide what eBPF can do here.
//! Read once at start-up; nothing here changes kernel state.
use std::fs;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct Host {
    /// `uname -r`.
    pub kernel_release: String,
    /// Active lockdown mode (`none`, `integrity`, `confidentiality`), if the LSM is present.
    pub lockdown: Option<String>,
    /// The kernel log says "Kernel is locked down" (when securityfs is not mounted to ask).
    #[serde(default)]
    pub lockdown_in_kernel_log: bool,
    /// /sys/kernel/btf/vmlinux exists.
    pub btf_available: bool,
    /// CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN: enough to load tracing programs.
    pub can_trace: bool,
}

impl Host {
    pub fn detect() -> Host {
        Host {
            kernel_release: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            lockdown: fs::read_to_string("/sys/kernel/security/lockdown")
                .ok()
                .and_then(|s| parse_lockdown(&s)),
            lockdown_in_kernel_log: kernel_log().is_some_and(|log| log.contains("Kernel is locked down")),
            btf_available: fs::metadata(crate::kernel::kernel_btf::VMLINUX_BTF).is_ok(),
            can_trace: fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| parse_cap_eff(&s))
                .is_some_and(caps_allow_tracing),
        }
    }

    /// Lockdown in confidentiality mode refuses programs that read kernel memory (fentry, kprobe).
    /// Without securityfs the mode is unknown; a locked-down kernel that refuses BPF reads to a
    /// privileged process is in confidentiality mode (integrity mode allows them).
    pub fn lockdown_blocks_tracing(&self) -> bool {
        match self.lockdown.as_deref() {
            Some(mode) => mode == "confidentiality",
            None => self.lockdown_in_kernel_log && self.can_trace,
        }
    }

    pub fn lockdown_description(&self) -> String {
        match (&self.lockdown, self.lockdown_in_kernel_log) {
            (Some(mode), _) => mode.clone(),
            (None, true) => "locked down (kernel log; securityfs not mounted to read the mode)".into(),
            (None, false) => "unknown (securityfs not mounted)".into(),
        }
    }
}

/// The kernel log, read-only (syslog(2) READ_ALL); None when not permitted.
fn kernel_log() -> Option<String> {
    const SYSLOG_ACTION_READ_ALL: i32 = 3;
    const SYSLOG_ACTION_SIZE_BUFFER: i32 = 10;
    // SAFETY: SIZE_BUFFER takes no buffer.
    let size = unsafe { libc::klogctl(SYSLOG_ACTION_SIZE_BUFFER, std::ptr::null_mut(), 0) };
    if size <= 0 {
        return None;
    }
    let mut buf = vec![0u8; size as usize];
    // SAFETY: buf is valid for `size` bytes.
    let n = unsafe { libc::klogctl(SYSLOG_ACTION_READ_ALL, buf.as_mut_ptr().cast(), size) };
    if n <= 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// `/sys/kernel/security/lockdown` reads like `none [integrity] confidentiality`.
pub fn parse_lockdown(text: &str) -> Option<String> {
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    Some(text[start + 1..end].to_string())
}

/// The `CapEff:` line of `/proc/self/status`, as a bit mask.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

pub fn caps_allow_tracing(mask: u64) -> bool {
    let has = |cap: u32| mask & (1u64 << cap) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockdown_mode_is_the_bracketed_word() {
        assert_eq!(
            parse_lockdown("none integrity [confidentiality]\n").as_deref(),
            Some("confidentiality")
        );
        assert_eq!(
            parse_lockdown("[none] integrity confidentiality").as_deref(),
            Some("none")
        );
        assert_eq!(parse_lockdown("garbage"), None);
    }

    #[test]
    fn capabilities_decide_tracing() {
        let status = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert!(caps_allow_tracing(0x1ff_ffff_ffff));
        assert!(!caps_allow_tracing(0));
        assert!(caps_allow_tracing((1 << CAP_BPF) | (1 << CAP_PERFMON)));
        assert!(!caps_allow_tracing(1 << CAP_BPF));
    }
}
