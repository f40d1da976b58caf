//! mhpscope: observe Linux memory hotplug with eBPF.
//!
//! Data flows one way: kernel events (`loader`, `live`) -> `decode` -> `model` (pure) -> views
//! (`report`). `frame` is the static picture from sysfs/procfs; `recording` the NDJSON format.
pub mod commands;
pub mod decode;
pub mod event;
pub mod frame;
pub mod host;
pub mod kernel_btf;
pub mod live;
pub mod loader;
pub mod model;
pub mod probes;
pub mod recording;
pub mod report;
