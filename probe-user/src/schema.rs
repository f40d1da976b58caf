//! JSON Schemas of the recording and the report (being written).
use anyhow::{bail, Result};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Of {
    Recording,
    Report,
}

pub fn print(_of: Of) -> Result<()> {
    bail!("mhpscope schema: not written yet")
}
