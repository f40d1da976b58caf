//! `cargo xtask dashboards`: every query of the Grafana dashboards in dashboards/ run against a
//! real Prometheus (Debian's) that scrapes one `mhpscope serve` per test recording, so that a
//! renamed metric or a broken expression shows up here instead of as an empty panel.

use crate::lab::checks::Tally;
use crate::{build_cmd, util};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Debian's package `prometheus` (installed by `cargo xtask setup`).
const PROMETHEUS: &str = "/usr/bin/prometheus";
/// Every wait below polls at this pace, up to its own deadline.
const POLL: Duration = Duration::from_millis(250);
const STARTUP: Duration = Duration::from_secs(30);
/// Scrapes every target must have had before the queries run: rate() and increase() need two
/// samples in their window, a third leaves a margin.
const SCRAPES: f64 = 3.0;
/// What Grafana's interval variables become. The scrape interval is 1 s, so each window holds
/// enough samples for rate() and increase().
const BUILTINS: [(&str, &str); 5] = [
    ("__rate_interval", "30s"),
    ("__interval", "15s"),
    ("__range", "1m"),
    ("__range_s", "60"),
    ("__range_ms", "60000"),
];

/// `cargo xtask dashboards`: fails if any query fails.
pub fn run_cmd() -> Result<()> {
    let t = run()?;
    if t.failed > 0 {
        bail!("{} of {} dashboard queries failed", t.failed, t.passed + t.failed);
    }
    Ok(())
}

/// Runs every query once Prometheus has scraped the recordings; one tally entry per query.
/// An error means the test could not run at all (no Prometheus, a server that did not start).
pub fn run() -> Result<Tally> {
    let t0 = Instant::now();
    anyhow::ensure!(
        Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} is missing: `cargo xtask setup` installs Debian's prometheus package"
    );
    let dashboards = dashboard_files()?;
    let bin = build_cmd::run(false)?;
    let scratch = Scratch::new()?;

    let mut servers = Vec::new();
    for rec in recordings()? {
        servers.push(Serve::start(&bin, &rec)?);
    }
    let agent = agent();
    for s in &servers {
        s.wait_until_ended(&agent)?;
    }
    let mut prometheus = Prometheus::start(&scratch.0, &servers)?;
    prometheus.wait_for_scrapes(&agent, servers.len())?;
    println!(
        "dashboards: prometheus on {} scraping {} mhpscope serve ({})",
        prometheus.addr,
        servers.len(),
        servers
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut tally = Tally::default();
    for path in &dashboards {
        check_dashboard(&agent, &prometheus, path, &mut tally)?;
    }
    println!(
        "dashboards: {} passed, {} failed ({})",
        tally.passed,
        tally.failed,
        util::secs(t0.elapsed())
    );
    Ok(tally)
}

fn dashboard_files() -> Result<Vec<PathBuf>> {
    let files = files_with_ext(&util::repo_root().join("dashboards"), "json")?;
    anyhow::ensure!(!files.is_empty(), "no dashboards/*.json");
    Ok(files)
}

/// Every recording of the tests: together they give every panel something (RAM and ZONE_DEVICE
/// inits, off-node memmaps, span findings).
fn recordings() -> Result<Vec<PathBuf>> {
    let files = files_with_ext(&util::repo_root().join("probe-user/tests/data"), "ndjson")?;
    anyhow::ensure!(!files.is_empty(), "no probe-user/tests/data/*.ndjson");
    Ok(files)
}

fn files_with_ext(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    Ok(files)
}

fn check_dashboard(agent: &ureq::Agent, prom: &Prometheus, path: &Path, tally: &mut Tally) -> Result<()> {
    let file = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let dash: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;

    // Template variables select among label values: ".*" selects them all, as "All" does.
    let mut vars: BTreeMap<String, String> = BUILTINS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let templating = dash["templating"]["list"].as_array().cloned().unwrap_or_default();
    for v in &templating {
        if let Some(name) = v["name"].as_str() {
            vars.insert(name.to_string(), ".*".into());
        }
    }

    let mut queries: Vec<(String, String)> = Vec::new();
    for v in &templating {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap_or_default();
            let name = format!("variable ${}", v["name"].as_str().unwrap_or("?"));
            queries.push((name, q.to_string()));
        }
    }
    let mut panels = Vec::new();
    collect_panels(&dash["panels"], &mut panels);
    for p in panels {
        let title = p["title"].as_str().unwrap_or("(untitled)");
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = t["expr"].as_str() {
                let name = format!("{title:?} [{}]", t["refId"].as_str().unwrap_or("?"));
                queries.push((name, expr.to_string()));
            }
        }
    }
    anyhow::ensure!(!queries.is_empty(), "{file}: no queries");

    for (name, expr) in queries {
        let outcome = substitute(&expr, &vars)
            .map(|e| grafana_function(&e))
            .and_then(|e| prom.query(agent, &e));
        match outcome {
            Ok(n) => {
                tally.passed += 1;
                println!("ok   {file} {name}: {n} series: {expr}");
            }
            Err(why) => {
                tally.failed += 1;
                println!("FAIL {file} {name}: {why}: {expr}");
            }
        }
    }
    Ok(())
}

/// Panels, including those nested in (collapsed) rows.
fn collect_panels<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
    for p in panels.as_array().into_iter().flatten() {
        out.push(p);
        collect_panels(&p["panels"], out);
    }
}

/// Replaces `$name` and `${name}` by the variable's value; an unknown variable is an error
/// (Prometheus would reject the `$` anyway, less clearly).
fn substitute(expr: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(inner) => {
                let end = inner.find('}').ok_or("unclosed ${")?;
                (&inner[..end], end + 2)
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        let value = vars
            .get(name)
            .ok_or_else(|| format!("unknown variable ${name}"))?;
        out.push_str(value);
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Grafana's variable-query functions as plain PromQL: `label_values(selector, label)` asks
/// for the label's values among the selector's series.
fn grafana_function(query: &str) -> String {
    let Some(args) = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|a| a.strip_suffix(')'))
    else {
        return query.to_string();
    };
    match args.rsplit_once(',') {
        Some((selector, label)) => format!("count by ({}) ({})", label.trim(), selector.trim()),
        None => format!("count by ({0}) ({{{0}=~\".+\"}})", args.trim()),
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        // Prometheus explains a bad query in the body of its 400 / 422.
        .http_status_as_error(false)
        .build()
        .into()
}

pub(crate) fn get(agent: &ureq::Agent, url: &str, query: Option<&str>) -> Result<(u16, String)> {
    let mut req = agent.get(url);
    if let Some(q) = query {
        req = req.query("query", q);
    }
    let mut resp = req.call().with_context(|| format!("GET {url}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading {url}"))?;
    Ok((status, body))
}

/// A child process that is killed when this goes out of scope, whatever happened; and by the
/// kernel if xtask itself dies.
struct Guarded {
    child: Child,
}

impl Guarded {
    fn spawn(cmd: &mut Command) -> Result<Guarded> {
        // SAFETY: prctl is async-signal-safe and touches only the child being created.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting `{}`", util::describe(cmd)))?;
        Ok(Guarded { child })
    }

    /// Some(why) once the process has exited.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("exited ({status})")),
            Ok(None) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `mhpscope serve --input <recording>` on a port of its choosing.
pub(crate) struct Serve {
    name: String,
    addr: String,
    /// Killed with this.
    _proc: Guarded,
}

impl Serve {
    pub(crate) fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    pub(crate) fn pid(&self) -> u32 {
        self._proc.child.id()
    }

    pub(crate) fn start(bin: &Path, rec: &Path) -> Result<Serve> {
        let name = rec.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let mut proc = Guarded::spawn(
            Command::new(bin)
                .args(["serve", "--listen", "127.0.0.1:0", "--input"])
                .arg(rec)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )?;
        // Port 0 avoids racing for a free port: the address comes back on stderr. A thread reads
        // it (and whatever follows, so the pipe never fills) while we wait with a deadline.
        let stderr = proc.child.stderr.take().context("serve's stderr")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            match rx.recv_timeout(POLL) {
                Ok(line) => {
                    let addr = line
                        .split_once("serving metrics on http://")
                        .and_then(|(_, rest)| rest.split_once("/metrics"))
                        .map(|(addr, _)| addr.to_string());
                    match addr {
                        Some(addr) => {
                            return Ok(Serve {
                                name,
                                addr,
                                _proc: proc,
                            })
                        }
                        None => seen.push(line),
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let state = proc.exited().unwrap_or_else(|| "still running".into());
        bail!(
            "mhpscope serve on {name} never said where it listens ({state}): {}",
            seen.join("\n")
        )
    }

    /// The recording is applied whole within a pump or two; scrapes before that would see a
    /// stream still filling.
    fn wait_until_ended(&self, agent: &ureq::Agent) -> Result<()> {
        self.wait_until_ended_within(agent, STARTUP)
    }

    pub(crate) fn wait_until_ended_within(&self, agent: &ureq::Agent, limit: Duration) -> Result<()> {
        let url = format!("http://{}/metrics", self.addr);
        let deadline = Instant::now() + limit;
        loop {
            let (status, body) = get(agent, &url, None)?;
            if status == 200 && body.lines().any(|l| l == "mhpscope_stream_ended 1") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{}: {url} never showed the recording's end", self.name);
            }
            thread::sleep(POLL);
        }
    }
}

/// A temporary directory removed at the end (after the processes using it: declared first).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("mhpscope-dashboards-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Prometheus {
    addr: String,
    log: PathBuf,
    proc: Guarded,
}

impl Prometheus {
    fn start(dir: &Path, servers: &[Serve]) -> Result<Prometheus> {
        let targets: Vec<String> = servers.iter().map(|s| format!("\"{}\"", s.addr)).collect();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: mhpscope\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        // Prometheus has no "any free port": take one from the kernel and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let proc = Guarded::spawn(
            Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out),
        )?;
        Ok(Prometheus { addr, log, proc })
    }

    fn fail(&self, what: String) -> anyhow::Error {
        anyhow::anyhow!("{what}; prometheus log:\n{}", util::tail(&self.log, 20))
    }

    /// Until every target is up and has been scraped `SCRAPES` times.
    fn wait_for_scrapes(&mut self, agent: &ureq::Agent, targets: usize) -> Result<()> {
        let deadline = Instant::now() + STARTUP + Duration::from_secs(30);
        let mut state = String::from("not answering");
        while Instant::now() < deadline {
            if let Some(why) = self.proc.exited() {
                return Err(self.fail(format!("prometheus {why}")));
            }
            if let Ok(s) = self.scrape_state(agent, targets) {
                if s.is_empty() {
                    return Ok(());
                }
                state = s;
            }
            thread::sleep(POLL);
        }
        Err(self.fail(format!("prometheus never scraped every target enough: {state}")))
    }

    /// What is still missing ("" when nothing).
    fn scrape_state(&self, agent: &ureq::Agent, targets: usize) -> Result<String> {
        let (_, body) = get(agent, &format!("http://{}/api/v1/targets", self.addr), None)?;
        let v: Value = serde_json::from_str(&body)?;
        let active = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        let up = active.iter().filter(|t| t["health"] == "up").count();
        if up < targets {
            let errors: Vec<&str> = active.iter().filter_map(|t| t["lastError"].as_str()).collect();
            return Ok(format!("{up} of {targets} targets up {errors:?}"));
        }
        let fewest = self.value(agent, "min(count_over_time(up{job=\"mhpscope\"}[1m]))")?;
        if fewest < SCRAPES {
            return Ok(format!("{fewest} scrapes of the least scraped target"));
        }
        Ok(String::new())
    }

    fn value(&self, agent: &ureq::Agent, expr: &str) -> Result<f64> {
        let (_, body) = get(agent, &self.query_url(), Some(expr))?;
        let v: Value = serde_json::from_str(&body)?;
        let s = v["data"]["result"][0]["value"][1].as_str().context("no value")?;
        Ok(s.parse()?)
    }

    fn query_url(&self) -> String {
        format!("http://{}/api/v1/query", self.addr)
    }

    /// Runs one instant query; Ok(number of series) when some series has a number that is
    /// not NaN (what a panel would draw), Err(why) otherwise.
    fn query(&self, agent: &ureq::Agent, expr: &str) -> Result<usize, String> {
        let (status, body) = get(agent, &self.query_url(), Some(expr)).map_err(|e| format!("{e:#}"))?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("HTTP {status}, not JSON: {e}"))?;
        if v["status"] != "success" {
            return Err(format!(
                "{}: {}",
                v["errorType"].as_str().unwrap_or("error"),
                v["error"].as_str().unwrap_or(&body)
            ));
        }
        let data = &v["data"];
        let numbers: Vec<&str> = match data["resultType"].as_str() {
            Some("scalar") => data["result"][1].as_str().into_iter().collect(),
            Some("vector") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["value"][1].as_str())
                .collect(),
            Some("matrix") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["values"].as_array().into_iter().flatten())
                .filter_map(|p| p[1].as_str())
                .collect(),
            other => return Err(format!("unexpected result type {other:?}")),
        };
        let series = data["result"].as_array().map_or(1, |r| r.len());
        if numbers.is_empty() {
            return Err("empty result".into());
        }
        if numbers.iter().all(|n| n.eq_ignore_ascii_case("nan")) {
            return Err(format!("{series} series, all NaN"));
        }
        Ok(series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_substituted() {
        let vars: BTreeMap<String, String> = [("node", ".*"), ("__rate_interval", "30s")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            substitute(
                "rate(x{node=~\"$node\"}[$__rate_interval]) + y{n=~\"${node}\"}",
                &vars
            )
            .unwrap(),
            "rate(x{node=~\".*\"}[30s]) + y{n=~\".*\"}"
        );
        assert!(substitute("x{a=\"$nodes\"}", &vars).is_err());
        assert_eq!(substitute("plain", &vars).unwrap(), "plain");
    }

    #[test]
    fn label_values_becomes_promql() {
        assert_eq!(
            grafana_function("label_values(m{a=~\"b\"}, node)"),
            "count by (node) (m{a=~\"b\"})"
        );
        assert_eq!(
            grafana_function("label_values(node)"),
            "count by (node) ({node=~\".+\"})"
        );
        assert_eq!(grafana_function("sum(x)"), "sum(x)");
    }
}
