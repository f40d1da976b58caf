//! mhpscope: observe Linux memory hotplug with eBPF.
//!
//! Data flows one way: kernel events (`loader`, `live`) -> `decode` -> `model` (pure) -> views
//! (`report`, `tui`, `metrics`). `frame` is the static picture from sysfs/procfs; `recording`
//! the NDJSON format. `source` yields one stream of recording lines (kernel, file, pipe) and
//! `stream` turns it into a model that every view reads.
pub mod answers;
pub mod commands;
pub mod decode;
pub mod errno;
pub mod event;
pub mod frame;
pub mod generate;
pub mod host;
pub mod kallsyms;
pub mod kernel_btf;
pub mod live;
pub mod loader;
pub mod metrics;
pub mod model;
pub mod probes;
pub mod probes_doc;
pub mod recording;
pub mod replay;
pub mod report;
pub mod schema;
pub mod serve;
pub mod source;
pub mod stream;
pub mod synth;
pub mod tui;
