//! `mhpscope top` (being written).
use anyhow::{bail, Result};

use crate::{loader::Options, source::Input};

pub fn run(_opts: &Options, _input: Input, _speed: f64) -> Result<()> {
    bail!("mhpscope top: not written yet")
}
