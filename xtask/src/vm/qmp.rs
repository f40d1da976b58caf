//! Minimal QMP client: JSON lines over the unix socket. Every message in both directions is kept
//! (with a timestamp) for the ground truth; async events are collected as they arrive.

use crate::vm::lines::{Line, LineSocket};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QmpRecord {
    /// Milliseconds since the lab started.
    pub t_ms: f64,
    /// "send", "reply" or "event".
    pub dir: String,
    pub msg: Value,
}

pub struct Qmp {
    sock: LineSocket,
    epoch: Instant,
    next_id: u64,
    pub log: Vec<QmpRecord>,
    pub events: Vec<Value>,
}

impl Qmp {
    pub fn connect(path: &Path, epoch: Instant) -> Result<Qmp> {
        let sock = LineSocket::connect(path, Duration::from_secs(10)).context("QMP socket")?;
        let mut q = Qmp {
            sock,
            epoch,
            next_id: 0,
            log: Vec::new(),
            events: Vec::new(),
        };
        let greeting = q.read_msg(Instant::now() + Duration::from_secs(10))?;
        if greeting.get("QMP").is_none() {
            bail!("unexpected QMP greeting: {greeting}");
        }
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    fn now_ms(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64() * 1e3
    }

    fn read_msg(&mut self, deadline: Instant) -> Result<Value> {
        loop {
            match self.sock.read_line()? {
                Line::Line(l) => {
                    let v: Value = serde_json::from_slice(&l)
                        .with_context(|| format!("bad QMP line: {}", String::from_utf8_lossy(&l)))?;
                    let dir = if v.get("event").is_some() {
                        "event"
                    } else {
                        "reply"
                    };
                    self.log.push(QmpRecord {
                        t_ms: self.now_ms(),
                        dir: dir.into(),
                        msg: v.clone(),
                    });
                    if dir == "event" {
                        self.events.push(v.clone());
                    }
                    return Ok(v);
                }
                Line::Timeout if Instant::now() >= deadline => {
                    bail!("QMP: timed out waiting for a message")
                }
                Line::Timeout => {}
            }
        }
    }

    /// Runs a command; returns its "return" value, or fails with QMP's error.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        self.next_id += 1;
        let id = format!("x{}", self.next_id);
        let mut msg = json!({"execute": command, "id": id});
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        self.log.push(QmpRecord {
            t_ms: self.now_ms(),
            dir: "send".into(),
            msg: msg.clone(),
        });
        let mut line = serde_json::to_vec(&msg)?;
        line.push(b'\n');
        self.sock.send(&line)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self
                .read_msg(deadline)
                .with_context(|| format!("QMP {command}"))?;
            if v.get("id").and_then(Value::as_str) != Some(id.as_str()) {
                continue; // an event, or noise
            }
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            bail!("QMP {command} failed: {}", v.get("error").unwrap_or(&v));
        }
    }

    /// Waits until an event matching `pred` has arrived (including earlier ones).
    pub fn wait_event(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.iter().find(|e| pred(e)) {
                return Ok(e.clone());
            }
            if Instant::now() >= deadline {
                bail!("QMP: no {what} event within {} s", timeout.as_secs());
            }
            match self.read_msg(deadline) {
                Ok(_) => {}
                Err(_) if Instant::now() >= deadline => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads whatever events are pending without blocking for long.
    pub fn drain(&mut self) {
        while self.read_msg(Instant::now()).is_ok() {}
    }
}
