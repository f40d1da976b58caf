//! Kernel symbol addresses, from /proc/kallsyms.
use std::{
    fs::File,
    io::{self, BufRead, BufReader},
};

pub const KALLSYMS: &str = "/proc/kallsyms";

/// The address of the core-kernel symbol `name` in kallsyms-formatted `text` ("ADDR TYPE NAME",
/// module symbols with a fourth "[module]" field). None when absent, or when the address is
/// hidden: kptr_restrict shows every address as zero to readers without CAP_SYSLOG.
pub fn find(mut text: impl BufRead, name: &str) -> io::Result<Option<u64>> {
    let mut line = String::new();
    loop {
        line.clear();
        if text.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let mut fields = line.split_ascii_whitespace();
        let (Some(addr), Some(_kind), Some(sym), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if sym == name {
            return Ok(u64::from_str_radix(addr, 16).ok().filter(|&a| a != 0));
        }
    }
}

/// `find` in the running kernel's /proc/kallsyms.
pub fn address(name: &str) -> io::Result<Option<u64>> {
    find(BufReader::new(File::open(KALLSYMS)?), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
ffffffff81000000 T _stext
ffffffffc0a01000 d vmemmap_base\t[fake_module]
ffffffff82a1c2b8 D vmemmap_base
ffffffff82a1c2c0 D vmemmap_base_other
";

    #[test]
    fn finds_a_core_kernel_symbol_not_a_modules_or_a_longer_name() {
        assert_eq!(
            find(TEXT.as_bytes(), "vmemmap_base").unwrap(),
            Some(0xffffffff82a1c2b8)
        );
        assert_eq!(find(TEXT.as_bytes(), "_stext").unwrap(), Some(0xffffffff81000000));
        assert_eq!(find(TEXT.as_bytes(), "vmemmap").unwrap(), None);
    }

    #[test]
    fn hidden_addresses_are_unknown() {
        let hidden = "0000000000000000 D vmemmap_base\n";
        assert_eq!(find(hidden.as_bytes(), "vmemmap_base").unwrap(), None);
    }

    /// On the machine the tests run on: a symbol every x86-64 kernel has is found when this
    /// process may see addresses, and nothing is invented when it may not.
    #[test]
    fn reads_the_running_kernels_kallsyms() {
        let Ok(found) = address("_stext") else {
            eprintln!("skipped: {KALLSYMS} unreadable here");
            return;
        };
        let restrict = std::fs::read_to_string("/proc/sys/kernel/kptr_restrict").unwrap_or_default();
        // SAFETY: plain syscall.
        let root = unsafe { libc::geteuid() } == 0;
        let visible = match restrict.trim() {
            "0" => true,
            "1" => root,
            _ => false,
        };
        if visible {
            assert!(found.is_some_and(|a| a >= 0xffff_0000_0000_0000), "{found:?}");
        }
        assert_eq!(address("no_such_symbol_in_any_kernel").unwrap(), None);
    }
}
