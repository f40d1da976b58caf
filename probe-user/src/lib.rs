//! mhpscope: observe Linux memory hotplug with eBPF.
//!
//! Four rooms, and data flows one way through them: `kernel` (attach, drain, decode: kernel
//! events) -> `recording` (the NDJSON format; `source` yields one stream of recording lines
//! from the kernel, a file or a pipe, `stream` and `replay` feed it to the model) -> `model`
//! (pure; its vocabulary is `model::event`) -> `views` (report, tui, metrics, serve). Besides:
//! `commands` (the CLI's subcommands), `errno`, `generate` (man pages, completions).
pub mod commands;
pub mod errno;
pub mod generate;
pub mod kernel;
pub mod model;
pub mod recording;
pub mod views;
