//! `mhpscope probes --json`: one versioned document, with a JSON Schema like the report's.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    kernel::host::Host,
    kernel::probes::{FailureCoverage, ProbeStatus},
};

/// Bumped on any incompatible change of the document.
pub const PROBES_SCHEMA_VERSION: u32 = 1;

/// What `mhpscope probes --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbesDoc {
    /// The document format: bumped on any incompatible change.
    pub schema_version: u32,
    pub tool_version: String,
    /// The running kernel, lockdown, BTF and privileges.
    pub host: Host,
    /// Every probe point: attached or not, how, what the way chosen loses, why better ways failed.
    pub probes: Vec<ProbeStatus>,
    /// offline_pages' failure reasons: the step that reveals each and whether mhpscope can tell
    /// it on this kernel.
    pub offline_failures: Vec<FailureCoverage>,
    pub contiguity: Contiguity,
}

/// How the running kernel keeps zone contiguity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Contiguity {
    /// The kernel derives contiguity from `zone->pages_with_online_memmap`.
    pub from_pages_with_online_memmap: bool,
    pub note: String,
}
