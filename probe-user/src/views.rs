//! The views: what the model's snapshot shows, and nothing else. The answers (`answers`), the
//! report as text and JSON (`report`), `top` (`tui`), Prometheus metrics (`metrics`) and their
//! server (`serve`), the JSON Schemas (`schema`) and `probes --json` (`probes_doc`). Views
//! never talk to the kernel.

pub mod answers;
pub mod metrics;
pub mod probes_doc;
pub mod report;
pub mod schema;
pub mod serve;
pub mod snapshot;
pub mod tui;

use answers::Thresholds;

/// How views judge and how much history the model keeps (`--headroom-warn`,
/// `--online-grace`, `--keep`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewOptions {
    pub thresholds: Thresholds,
    /// Entries of each history to keep; 0 keeps everything.
    pub keep: usize,
}

impl Default for ViewOptions {
    fn default() -> ViewOptions {
        ViewOptions {
            thresholds: Thresholds::default(),
            keep: crate::model::DEFAULT_KEEP,
        }
    }
}
