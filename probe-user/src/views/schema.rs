//! JSON Schemas of the recording lines and of `report --json`.
//!
//! Derived from the Rust types that are serialised (their doc comments become the schemas'
//! descriptions), so the schemas cannot drift from what mhpscope writes. The committed copies
//! under `schema/` are checked against this output by tests/schema.rs.
use anyhow::Result;
use schemars::{generate::SchemaSettings, JsonSchema};
use serde_json::{json, Value};

use crate::{
    recording::{Line, FORMAT_VERSION},
    views::report::{Document, SCHEMA_VERSION},
};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Of {
    Recording,
    Report,
    /// `mhpscope probes --json`.
    Probes,
}

const RECORDING_DESCRIPTION: &str = "One line of an mhpscope recording (`mhpscope record`). \
A recording is NDJSON: one JSON object per line. The first line is the header (\"type\": \"header\"), \
then one line per traced event (\"type\": \"event\"), and the last line is the summary \
(\"type\": \"summary\"); a recording without a summary line was cut short. This schema validates one \
line. The header's `format_version` is the version of this format and of this schema (the `v<N>` \
in `$id`): an incompatible change bumps it, so consumers should check it before reading on. \
Within one version fields and event kinds may be added; consumers should ignore what they do not \
know. Times are nanoseconds of CLOCK_MONOTONIC unless named otherwise.";

const REPORT_DESCRIPTION: &str = "The document printed by `mhpscope report --json`: what was traced, \
per node, block and zone figures, the hotplug operations, memmap placement and initialisation, and \
zone span check findings. `schema_version` is the version of this document and of this schema (the \
`v<N>` in `$id`): an incompatible change bumps it, so consumers should check it before reading on. \
Within one version fields may be added; consumers should ignore what they do not know. Times \
(`*_ns`, `ts_ns`) are nanoseconds of CLOCK_MONOTONIC unless named otherwise.";

/// The schema of one recording line: header, event or summary.
pub fn recording_schema() -> Value {
    schema_of::<Line>(
        &format!("urn:mhpscope:schema:recording:v{FORMAT_VERSION}"),
        "mhpscope recording line",
        RECORDING_DESCRIPTION,
    )
}

/// The schema of `mhpscope report --json`.
pub fn report_schema() -> Value {
    schema_of::<Document>(
        &format!("urn:mhpscope:schema:report:v{SCHEMA_VERSION}"),
        "mhpscope report",
        REPORT_DESCRIPTION,
    )
}

const PROBES_DESCRIPTION: &str = "The document printed by `mhpscope probes --json`: the host \
(kernel, lockdown, BTF, privileges), every probe point (attached or not, how, what the way chosen \
loses, why better ways failed), offline_pages' failure reasons and whether this kernel lets \
mhpscope tell each apart, and how the kernel keeps zone contiguity. `schema_version` is the \
version of this document and of this schema (the `v<N>` in `$id`).";

/// The schema of `mhpscope probes --json`.
pub fn probes_schema() -> Value {
    schema_of::<crate::views::probes_doc::ProbesDoc>(
        &format!(
            "urn:mhpscope:schema:probes:v{}",
            crate::views::probes_doc::PROBES_SCHEMA_VERSION
        ),
        "mhpscope probes",
        PROBES_DESCRIPTION,
    )
}

pub fn print(of: Of) -> Result<()> {
    let schema = match of {
        Of::Recording => recording_schema(),
        Of::Report => report_schema(),
        Of::Probes => probes_schema(),
    };
    // writeln!, not println!: into a closed pipe that is an error (main ends quietly), not a panic.
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(
        &mut out,
        format!("{}\n", serde_json::to_string_pretty(&schema)?).as_bytes(),
    )?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}

fn schema_of<T: JsonSchema>(id: &str, title: &str, description: &str) -> Value {
    // The serialize contract describes what mhpscope writes: every field it always emits is
    // required, `null` included. (The reader is more lenient: it accepts missing optional fields.)
    let schema = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    let root = value.as_object_mut().expect("a root schema is an object");
    root.insert("$id".into(), json!(id));
    root.insert("title".into(), json!(title));
    root.insert("description".into(), json!(description));
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_current_versions() {
        assert_eq!(
            recording_schema()["$id"],
            format!("urn:mhpscope:schema:recording:v{FORMAT_VERSION}")
        );
        assert_eq!(
            report_schema()["$id"],
            format!("urn:mhpscope:schema:report:v{SCHEMA_VERSION}")
        );
    }
}
