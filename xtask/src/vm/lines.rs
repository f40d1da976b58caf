//! Line-oriented unix socket client with deadlines, shared by QMP and the guest channel.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct LineSocket {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Bytes of a line not yet terminated when a read timed out; kept for the next call.
    partial: Vec<u8>,
}

/// Outcome of one read attempt.
pub enum Line {
    Line(Vec<u8>),
    Timeout,
}

impl LineSocket {
    /// Connects, retrying until the socket appears (qemu creates it shortly after start).
    pub fn connect(path: &Path, timeout: Duration) -> Result<LineSocket> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e).with_context(|| format!("connecting to {}", path.display())),
            }
        };
        // Short timeouts so callers can check their own deadlines and qemu's liveness.
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(LineSocket {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            partial: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes).context("writing to socket")?;
        self.writer.flush()?;
        Ok(())
    }

    /// Reads one line (without the '\n') or reports a timeout after ~200 ms.
    pub fn read_line(&mut self) -> Result<Line> {
        match self.reader.read_until(b'\n', &mut self.partial) {
            Ok(0) => bail!("connection closed by qemu"),
            Ok(_) if self.partial.ends_with(b"\n") => {
                let mut line = std::mem::take(&mut self.partial);
                line.pop();
                Ok(Line::Line(line))
            }
            Ok(_) => Ok(Line::Timeout),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                Ok(Line::Timeout)
            }
            Err(e) => Err(e).context("reading from socket"),
        }
    }
}
