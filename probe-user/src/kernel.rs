//! The kernel side: what the running kernel offers (`host`, `kernel_btf`, `kallsyms`), the
//! probe table and its ways (`probes`), loading and attaching them (`loader`), draining their
//! ring buffer (`live`) and decoding its records into events (`decode`); and the static
//! picture from sysfs/procfs (`frame`). Only this room talks to the kernel.

pub mod decode;
pub mod frame;
pub mod host;
pub mod kallsyms;
pub mod kernel_btf;
pub mod live;
pub mod loader;
pub mod probes;
