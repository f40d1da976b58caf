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
pub mod tui;
