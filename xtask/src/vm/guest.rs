//! Host side of the command channel on the guest's /dev/ttyS1 (see init.sh): one request line
//! "<seq> <command>", answered by the output and "\n@@END <seq> <rc>".

use crate::vm::lines::{Line, LineSocket};
use crate::vm::qemu::Qemu;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Guest {
    sock: LineSocket,
    seq: u64,
}

pub struct Output {
    pub rc: i32,
    pub text: String,
}

impl Guest {
    /// Connects right after qemu starts (before the guest boots, so nothing is lost), then waits
    /// for the guest's "@@READY".
    pub fn connect(path: &Path, qemu: &mut Qemu, timeout: Duration) -> Result<Guest> {
        let sock = LineSocket::connect(path, Duration::from_secs(10)).context("control socket")?;
        let mut g = Guest { sock, seq: 0 };
        let deadline = Instant::now() + timeout;
        loop {
            match g.sock.read_line()? {
                // Anything before READY is line noise from the UART's probe.
                Line::Line(l) if l.ends_with(b"@@READY") => return Ok(g),
                Line::Line(_) => {}
                Line::Timeout => {
                    qemu.ensure_running().context("waiting for the guest to boot")?;
                    if Instant::now() >= deadline {
                        bail!("guest did not come up within {} s", timeout.as_secs());
                    }
                }
            }
        }
    }

    /// Runs a shell command in the guest; returns its exit code and combined output. A guest
    /// that stays silent past `timeout` gives `Unanswered`.
    pub fn run(&mut self, qemu: &mut Qemu, cmd: &str, timeout: Duration) -> Result<Output> {
        if cmd.contains('\n') {
            bail!("guest commands are single lines: {cmd:?}");
        }
        self.seq += 1;
        let marker = format!("@@END {} ", self.seq);
        self.sock.send(format!("{} {cmd}\n", self.seq).as_bytes())?;
        let deadline = Instant::now() + timeout;
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.sock.read_line()? {
                Line::Line(l) => {
                    if let Some(rc) = l.strip_prefix(marker.as_bytes()) {
                        let rc: i32 = String::from_utf8_lossy(rc)
                            .trim()
                            .parse()
                            .context("bad @@END line")?;
                        // The guest puts one '\n' before the marker; everything else is output.
                        out.pop();
                        return Ok(Output {
                            rc,
                            text: String::from_utf8_lossy(&out).into_owned(),
                        });
                    }
                    out.extend_from_slice(&l);
                    out.push(b'\n');
                }
                Line::Timeout => {
                    qemu.ensure_running()
                        .with_context(|| format!("guest command `{cmd}`"))?;
                    if Instant::now() >= deadline {
                        return Err(Unanswered {
                            cmd: cmd.to_string(),
                            secs: timeout.as_secs(),
                        }
                        .into());
                    }
                }
            }
        }
    }

    /// Like `run`, but a non-zero exit code is an error.
    pub fn run_ok(&mut self, qemu: &mut Qemu, cmd: &str, timeout: Duration) -> Result<String> {
        let o = self.run(qemu, cmd, timeout)?;
        if o.rc != 0 {
            bail!("guest command `{cmd}` exited {}: {}", o.rc, o.text.trim());
        }
        Ok(o.text)
    }

    /// The ids of the guest's memory blocks (/sys/devices/system/memory/memoryN), sorted.
    pub fn block_ids(&mut self, qemu: &mut Qemu) -> Result<Vec<u64>> {
        let out = self.run_ok(
            qemu,
            "cd /sys/devices/system/memory && echo memory[0-9]*",
            Duration::from_secs(30),
        )?;
        let mut ids: Vec<u64> = out
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("memory")?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Sends a command without waiting for an answer (poweroff).
    pub fn send_only(&mut self, cmd: &str) -> Result<()> {
        self.seq += 1;
        self.sock.send(format!("{} {cmd}\n", self.seq).as_bytes())
    }
}

/// The guest did not answer a command in time: its control channel or the guest itself is
/// stuck, not a finding about mhpscope.
#[derive(Debug)]
pub struct Unanswered {
    pub cmd: String,
    pub secs: u64,
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "guest command `{}` did not finish within {} s",
            self.cmd, self.secs
        )
    }
}

impl std::error::Error for Unanswered {}
