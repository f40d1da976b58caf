//! `mhpscope serve` (being written).
use std::net::SocketAddr;

use anyhow::{bail, Result};

use crate::{loader::Options, source::Input};

pub async fn run(_opts: &Options, _input: Input, _listen: SocketAddr, _speed: Option<f64>) -> Result<()> {
    bail!("mhpscope serve: not written yet")
}
