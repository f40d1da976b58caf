//! `mhpscope serve` as Prometheus sees it: the real binary on a real socket, scraped over HTTP.
use std::{
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use mhpscope::{commands, kernel::loader::Options, recording::source::Input, views::report::Document};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A running `mhpscope serve`, killed if the test ends without stopping it.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(input: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mhpscope"))
            .args(["serve", "--listen", "127.0.0.1:0", "--input"])
            .arg(input)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mhpscope starts");
        // The one line it prints names the address it actually bound (port 0: any free port).
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_once("/metrics"))
            .map(|(addr, _)| addr.to_string())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server { child, addr }
    }

    /// Status line, headers (lowercase names) and body of a GET.
    fn get(&self, path: &str) -> (String, Vec<(String, String)>, String) {
        let mut conn = TcpStream::connect(&self.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, body.to_string())
    }

    /// /metrics once the stream has reached `ended` (it pumps updates every 100 ms).
    fn metrics_when_ended(&self, ended: u32) -> String {
        let t0 = Instant::now();
        loop {
            let (_, _, body) = self.get("/metrics");
            if value(&body, "mhpscope_stream_ended") == Some(ended as f64) {
                return body;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "stream never ended:\n{body}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn terminate(mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "serve ignored SIGTERM");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the sample named exactly `series` (name and labels as exposed).
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| *s == series)
        .and_then(|(_, v)| v.parse().ok())
}

fn report(input: &Path) -> Document {
    let input = Input::File {
        path: input.to_path_buf(),
        follow: false,
    };
    commands::collect(&Options::default(), input, Default::default()).unwrap()
}

#[test]
fn serves_a_recording_over_http_until_sigterm() {
    let path = fixture("hotplug-6.1.ndjson");
    let doc = report(&path);
    let server = Server::start(&path);

    let (status, _, body) = server.get("/");
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.contains("/metrics"));

    let body = server.metrics_when_ended(1);
    let (status, headers, _) = server.get("/metrics");
    assert!(status.contains(" 200 "), "{status}");
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        content_type,
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(body.ends_with("# EOF\n"));

    assert_eq!(value(&body, "mhpscope_events_total"), Some(doc.events as f64));
    for n in &doc.nodes {
        let onlines = format!(
            "mhpscope_operations_total{{op=\"online\",result=\"ok\",node=\"{}\"}}",
            n.node
        );
        assert_eq!(value(&body, &onlines), Some(n.onlines as f64), "{onlines}");
        let inits = format!(
            "mhpscope_memmap_init_duration_seconds_count{{node=\"{}\",kind=\"ram\"}}",
            n.node
        );
        assert_eq!(value(&body, &inits), Some(n.memmap_init.count as f64), "{inits}");
    }
    let info = format!(
        "mhpscope_info{{kernel_release=\"{}\",origin=\"{}\",version=\"{}\"}}",
        doc.kernel_release,
        path.display(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&body, &info), Some(1.0), "{info}");

    assert!(server.terminate().success(), "graceful shutdown exits 0");
}

#[test]
fn a_truncated_recording_is_served_as_failed() {
    let dir = std::env::temp_dir().join(format!("mhpscope-serve-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("truncated.ndjson");
    let text = fs::read_to_string(fixture("hotplug-6.1.ndjson")).unwrap();
    // The header and 20 events: no summary.
    let head: Vec<&str> = text.lines().take(21).collect();
    fs::write(&path, head.join("\n") + "\n").unwrap();

    let server = Server::start(&path);
    let body = server.metrics_when_ended(2);
    assert_eq!(value(&body, "mhpscope_events_total"), Some(20.0));
    assert!(
        body.contains("mhpscope_zone_spanned_pages{"),
        "what was read is kept"
    );
    drop(server);
    fs::remove_dir_all(dir).ok();
}

#[test]
fn an_unreadable_recording_fails_at_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_mhpscope"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--input",
            "/nonexistent/rec.ndjson",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/rec.ndjson"), "{stderr}");
    assert!(!stderr.contains("serving metrics"), "{stderr}");
}
