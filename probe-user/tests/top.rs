//! `mhpscope top` as a person uses it: the real binary in a tmux session, keys sent with
//! `send-keys`, the screen read with `capture-pane`. What the screen shows is checked against
//! the recording itself (parsed here) or against `mhpscope report --json` of it.
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::PathBuf,
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mhpscope");
/// How long the screen may take to show what a test waits for.
const TIMEOUT: Duration = Duration::from_secs(20);
const SESSION: &str = "top";
/// What the pane's shell prints when mhpscope has exited, before its status.
const EXITED: &str = "mhpscope exited with";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A tmux server of our own running `mhpscope top`; killed when dropped, pass or fail.
struct Tmux {
    socket: String,
    /// The server's socket file, which it leaves behind.
    socket_path: Option<PathBuf>,
}

impl Tmux {
    fn start(test: &str, width: u16, height: u16, args: &[&str]) -> Tmux {
        match Command::new("tmux").arg("-V").output() {
            Ok(o) if o.status.success() => {}
            _ => panic!("tmux not found: run `cargo xtask setup`"),
        }
        let mut tmux = Tmux {
            socket: format!("mhpscope-{test}-{}", std::process::id()),
            socket_path: None,
        };
        let quoted: Vec<String> = std::iter::once(BIN)
            .chain(args.iter().copied())
            .map(|a| format!("'{a}'"))
            .collect();
        // A shell runs it and then says how it exited, on the screen that top leaves behind
        // (tmux's own exit status of a dead pane can miss the child's exit).
        let command = format!("{}; echo \"{EXITED} $?\"; exec sleep 600", quoted.join(" "));
        let (w, h) = (width.to_string(), height.to_string());
        let out = tmux.run(&["new-session", "-d", "-s", SESSION, "-x", &w, "-y", &h, &command]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        tmux.socket_path = Some(tmux.pane("#{socket_path}").into());
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            // A test run inside tmux must not talk to the user's server.
            .env_remove("TMUX")
            .output()
            .expect("running tmux")
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(out.status.success(), "tmux send-keys {keys:?}: {out:?}");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", SESSION]).stdout).into_owned()
    }

    /// A pane variable such as `alternate_on`.
    fn pane(&self, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", SESSION, format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Polls the screen until `ok` holds on a settled screen; fails with the last screen
    /// after TIMEOUT. Settled: unchanged a moment later, since a capture can catch a redraw
    /// half written (the status line new, the panes below still old).
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                thread::sleep(Duration::from_millis(100));
                if self.screen() == screen {
                    return screen;
                }
                continue;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?}"), |s| s.contains(text))
    }

    /// `q` quits.
    fn quit(&self) {
        self.keys(&["q"]);
        self.expect_clean_exit("q");
    }

    /// The process exits with status 0, out of the alternate screen.
    fn expect_clean_exit(&self, after: &str) {
        let screen = self.wait_for(&format!("top to exit after {after}"), |s| s.contains(EXITED));
        assert!(
            screen.contains(&format!("{EXITED} 0")),
            "exit status after {after}:\n{screen}"
        );
        assert_eq!(self.pane("#{alternate_on}"), "0", "the terminal was restored");
    }

    /// The pid of mhpscope: the child of the pane's shell.
    fn top_pid(&self) -> String {
        let shell = self.pane("#{pane_pid}");
        let out = Command::new("pgrep")
            .args(["-P", &shell])
            .output()
            .expect("running pgrep");
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            !pid.is_empty() && !pid.contains('\n'),
            "one child of the shell: {pid:?}"
        );
        pid
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        if let Some(path) = &self.socket_path {
            let _ = fs::remove_file(path);
        }
    }
}

/// What the recording says, read without mhpscope's code.
struct Truth {
    header: Value,
    events: Vec<Value>,
    summary: Value,
}

impl Truth {
    fn read(name: &str) -> Truth {
        let text = fs::read_to_string(fixture(name)).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let of = |t: &'static str| lines.iter().filter(move |l| l["type"] == t).cloned();
        Truth {
            header: of("header").next().unwrap(),
            events: of("event").collect(),
            summary: of("summary").next().unwrap(),
        }
    }

    fn ops(&self, kind: &str) -> impl Iterator<Item = &Value> + '_ {
        let kind = kind.to_string();
        self.events
            .iter()
            .map(|e| &e["op"])
            .filter(move |op| op["kind"] == kind.as_str() && op["ret"].as_i64().unwrap_or(0) == 0)
    }

    fn nodes(&self) -> Vec<i64> {
        let nodes = self.header["frame"]["nodes"].as_array().unwrap();
        nodes.iter().map(|n| n["node"].as_i64().unwrap()).collect()
    }

    /// Blocks created by successful `__add_pages` calls.
    fn hot_added_blocks(&self) -> BTreeSet<u64> {
        let layout = &self.header["layout"];
        let pages_per_block =
            layout["block_size_bytes"].as_u64().unwrap() / layout["page_size"].as_u64().unwrap();
        self.ops("add_pages")
            .flat_map(|op| {
                let (pfn, nr) = (op["pfn"].as_u64().unwrap(), op["nr_pages"].as_u64().unwrap());
                pfn / pages_per_block..=(pfn + nr - 1) / pages_per_block
            })
            .collect()
    }

    fn all_blocks(&self) -> BTreeSet<u64> {
        let frame = self.header["frame"]["blocks"].as_array().unwrap();
        let mut ids: BTreeSet<u64> = frame.iter().map(|b| b["id"].as_u64().unwrap()).collect();
        ids.extend(self.hot_added_blocks());
        ids
    }

    /// Successful adds, onlines, offlines and removes on a node.
    fn operations(&self, node: i64) -> [usize; 4] {
        let in_zone = |kind: &str| self.ops(kind).filter(|op| op["zone"]["node"] == node).count();
        // A removal names a range: its node is that of the hot-add of the same range.
        let added_at: BTreeMap<u64, i64> = self
            .ops("arch_add_memory")
            .map(|op| (op["start"].as_u64().unwrap(), op["node"].as_i64().unwrap()))
            .collect();
        let removes = self
            .ops("try_remove_memory")
            .filter(|op| added_at.get(&op["start"].as_u64().unwrap()) == Some(&node))
            .count();
        [
            self.ops("arch_add_memory")
                .filter(|op| op["node"] == node)
                .count(),
            in_zone("online_pages"),
            in_zone("offline_pages"),
            removes,
        ]
    }

    /// An event's time as top shows it: seconds since the recording started.
    fn since_start(&self, event: &Value) -> String {
        let start = self.header["clock"]["monotonic_ns"].as_u64().unwrap();
        let ts = event["ts_ns"].as_u64().unwrap();
        format!("+{:.3}", (ts - start) as f64 / 1e9)
    }
}

fn report_json(name: &str) -> Value {
    let path = fixture(name);
    let out = Command::new(BIN)
        .args(["report", "--json", "-i"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The text of a pane row that starts with `start` (inside its left border), as words.
fn row_words(screen: &str, start: &str) -> Option<Vec<String>> {
    let needle = format!("│{start}");
    let line = screen.lines().find(|l| l.contains(&needle))?;
    let at = line.find(&needle)? + '│'.len_utf8();
    let row = line[at..].split('│').next()?;
    Some(row.split_whitespace().map(String::from).collect())
}

/// The row after the one that starts with `start`, in the same pane, as words.
fn next_row_words(screen: &str, start: &str) -> Option<Vec<String>> {
    let needle = format!("│{start}");
    let mut lines = screen.lines().skip_while(|l| !l.contains(&needle));
    let first = lines.next()?;
    let column = first[..first.find(&needle)?].chars().count();
    let next: String = lines.next()?.chars().skip(column + 1).collect();
    Some(
        next.split('│')
            .next()?
            .split_whitespace()
            .map(String::from)
            .collect(),
    )
}

/// The event count in the status line ("│ 37 events │").
fn events_shown(screen: &str) -> u64 {
    let first = screen.lines().next().unwrap_or("");
    first
        .split(" │ ")
        .find_map(|part| part.strip_suffix(" events")?.parse().ok())
        .unwrap_or_else(|| panic!("no event count in {first:?}"))
}

/// The replay position in the status line ("replay +3.489 x1 PAUSED").
fn replay_position(screen: &str) -> String {
    let second = screen.lines().nth(1).unwrap_or("");
    let rest = second
        .strip_prefix("replay ")
        .unwrap_or_else(|| panic!("no replay in {second:?}"));
    rest.split(' ').next().unwrap().to_string()
}

fn titles_present(screen: &str) {
    for title in ["Nodes", "Block map", "Zones", "Events", "Probes"] {
        assert!(
            screen.contains(&format!(" {title} ")),
            "{title} missing:\n{screen}"
        );
    }
}

#[test]
fn a_replay_at_80x24_and_its_keys() {
    const REC: &str = "hotplug-6.1.ndjson";
    let truth = Truth::read(REC);
    let report = report_json(REC);
    let path = fixture(REC);
    let tmux = Tmux::start(
        "keys",
        80,
        24,
        &["top", "--input", path.to_str().unwrap(), "--speed", "64"],
    );

    let end = format!("ended: {}", truth.summary["end_reason"].as_str().unwrap());
    let screen = tmux.wait_text(&end);
    eprintln!("{screen}");
    titles_present(&screen);
    assert_eq!(events_shown(&screen), truth.events.len() as u64, "{screen}");
    let kernel = truth.header["host"]["kernel_release"].as_str().unwrap();
    assert!(screen.contains(&format!("kernel {kernel}")), "{screen}");

    // Nodes: node 1's memmap inits as the report counts them, its operations as the recording has them.
    let node1 = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == 1)
        .unwrap();
    let inits = row_words(&screen, "1 RAM").expect("a row for node 1");
    assert_eq!(inits[2], node1["memmap_init"]["count"].to_string(), "{screen}");
    let counts = next_row_words(&screen, "1 RAM").unwrap();
    let [adds, onlines, offlines, removes] = truth.operations(1);
    assert!(
        onlines > 0 && adds > 0,
        "the recording hot-adds and onlines on node 1"
    );
    assert_eq!(
        &counts[..8],
        [
            "add",
            &adds.to_string(),
            "on",
            &onlines.to_string(),
            "off",
            &offlines.to_string(),
            "rm",
            &removes.to_string()
        ],
        "{screen}"
    );

    // Block map: every block of the recording, and the hot-added ones.
    let hot = truth.hot_added_blocks().len();
    assert!(hot > 0);
    let title = format!("Block map · {hot}/{} hot-added", truth.all_blocks().len());
    assert!(screen.contains(&title), "expected {title:?}:\n{screen}");

    // Focus: Tab and Shift-Tab move the marker; one pane has it at a time.
    assert!(screen.contains("▶ Nodes"));
    tmux.keys(&["Tab"]);
    tmux.wait_text("▶ Block map");
    tmux.keys(&["Tab"]);
    let screen = tmux.wait_text("▶ Zones");
    assert_eq!(screen.matches('▶').count(), 1, "{screen}");
    tmux.keys(&["BTab"]);
    tmux.wait_text("▶ Block map");

    // Help: ? opens it, ? closes it.
    tmux.keys(&["?"]);
    tmux.wait_text("Tab, Shift-Tab");
    tmux.keys(&["?"]);
    tmux.wait_for("the help to close", |s| !s.contains("Tab, Shift-Tab"));

    // Node filter: / 1 Enter leaves node 1 only; / Enter shows all again.
    let others: Vec<i64> = truth.nodes().into_iter().filter(|&n| n != 1).collect();
    assert!(!others.is_empty(), "the recording has nodes besides 1");
    for n in &others {
        assert!(
            screen.contains(&format!("│{n} RAM")),
            "node {n} shown before filtering"
        );
    }
    tmux.keys(&["/"]);
    tmux.wait_text("filter nodes");
    tmux.keys(&["1", "Enter"]);
    let screen = tmux.wait_text("nodes 1 ");
    assert!(screen.contains("│1 RAM"), "{screen}");
    for n in &others {
        assert!(
            !screen.contains(&format!("│{n} RAM")),
            "node {n} filtered out:\n{screen}"
        );
        assert!(
            !screen.contains(&format!("│{n} DMA")),
            "node {n}'s zones filtered out:\n{screen}"
        );
    }
    tmux.keys(&["/"]);
    tmux.wait_text("filter nodes");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_text("nodes all");
    assert!(screen.contains(&format!("│{} RAM", others[0])), "{screen}");

    tmux.quit();
}

#[test]
fn pause_step_and_speed() {
    const REC: &str = "hotplug-6.1.ndjson";
    let truth = Truth::read(REC);
    let path = fixture(REC);
    let tmux = Tmux::start(
        "pause",
        80,
        24,
        &["top", "--input", path.to_str().unwrap(), "--speed", "1"],
    );
    tmux.wait_text("playing");
    tmux.keys(&["Space"]);
    let paused = tmux.wait_text("PAUSED");
    let (count, position) = (events_shown(&paused), replay_position(&paused));
    assert!(
        (count as usize) < truth.events.len(),
        "paused before the end:\n{paused}"
    );

    // Longer than a redraw interval: a running replay would show a later position.
    thread::sleep(Duration::from_millis(1500));
    let still = tmux.screen();
    assert_eq!(events_shown(&still), count, "{still}");
    assert_eq!(replay_position(&still), position, "{still}");

    // n applies exactly the next event of the recording and moves the clock to it.
    tmux.keys(&["n"]);
    let stepped = tmux.wait_for("one more event", |s| events_shown(s) == count + 1);
    assert_eq!(
        replay_position(&stepped),
        truth.since_start(&truth.events[count as usize]),
        "{stepped}"
    );
    assert!(stepped.contains("PAUSED"), "stepping keeps the replay paused");

    tmux.keys(&["+"]);
    tmux.wait_text(" x2 ");
    tmux.keys(&["-", "-"]);
    tmux.wait_text(" x0.5 ");
    tmux.keys(&["Space"]);
    tmux.wait_text("playing");
    tmux.quit();
}

#[test]
fn a_larger_terminal_shows_more() {
    const REC: &str = "offnode-6.12.ndjson";
    let truth = Truth::read(REC);
    let report = report_json(REC);
    let path = fixture(REC);
    let tmux = Tmux::start(
        "large",
        120,
        40,
        &["top", "--input", path.to_str().unwrap(), "--speed", "64"],
    );
    let screen = tmux.wait_text(&format!(
        "ended: {}",
        truth.summary["end_reason"].as_str().unwrap()
    ));
    titles_present(&screen);
    for n in truth.nodes() {
        assert!(screen.contains(&format!("│{n} RAM")), "node {n}:\n{screen}");
    }
    let title = format!(
        "Block map · {}/{} hot-added",
        truth.hot_added_blocks().len(),
        truth.all_blocks().len()
    );
    assert!(screen.contains(&title), "expected {title:?}:\n{screen}");
    let findings = report["span_findings"].as_array().unwrap().len();
    assert!(
        screen.contains(&format!("span-check findings ({findings})")),
        "{screen}"
    );

    // Events, newest first: the first row is the recording's last event.
    let rows: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains(" Events · "))
        .filter(|l| l.starts_with("│+"))
        .collect();
    assert!(rows.len() >= 10, "a tall terminal shows more events:\n{screen}");
    let newest = truth.events.last().unwrap();
    assert!(
        rows[0].starts_with(&format!("│{} ", truth.since_start(newest))),
        "{screen}"
    );
    tmux.quit();
}

#[test]
fn a_truncated_recording_says_why_it_failed() {
    let text = fs::read_to_string(fixture("hotplug-6.1.ndjson")).unwrap();
    let without_summary: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"type\":\"summary\""))
        .collect();
    let path = std::env::temp_dir().join(format!("mhpscope-top-truncated-{}.ndjson", std::process::id()));
    fs::write(&path, without_summary.join("\n") + "\n").unwrap();
    let tmux = Tmux::start(
        "truncated",
        80,
        24,
        &["top", "--input", path.to_str().unwrap(), "--speed", "64"],
    );
    // Shown whole, as cut short (not as failed): everything it holds is there.
    let screen = tmux.wait_text("cut short");
    assert!(
        screen.contains("ended: cut short (no summary)") && screen.contains("37 events"),
        "the whole reason is shown:\n{screen}"
    );

    // SIGTERM (a `kill`) ends it as cleanly as q.
    let kill = Command::new("kill")
        .args(["-TERM", &tmux.top_pid()])
        .status()
        .unwrap();
    assert!(kill.success());
    tmux.expect_clean_exit("SIGTERM");
    fs::remove_file(&path).ok();
}

#[test]
fn a_source_that_cannot_start_leaves_the_terminal_alone() {
    let out = Command::new(BIN)
        .args(["top", "--input", "/nonexistent/rec.ndjson"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/rec.ndjson"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing written to the terminal: {:?}",
        out.stdout
    );
}
