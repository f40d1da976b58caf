//! The real binary on crafted recordings: impossible values are refused with file:line and
//! field (fast), a recording cut short is shown with a warning (refused with --strict), and
//! output into a closed pipe ends quietly.
use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn mhpscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mhpscope"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("mhpscope runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mhpscope-recordings-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn real_lines() -> Vec<String> {
    fs::read_to_string(Path::new(DATA).join("hotplug-6.1.ndjson"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The (1-based) number of the first line of `kind`.
fn line_of(lines: &[String], kind: &str) -> usize {
    let tag = format!(r#""kind":"{kind}""#);
    lines.iter().position(|l| l.contains(&tag)).expect(kind) + 1
}

/// `lines` with `field` of line `n` (1-based) set to `value`.
fn with_field(lines: &[String], n: usize, field: &str, value: &str) -> Vec<String> {
    let mut out = lines.to_vec();
    let mut v: serde_json::Value = serde_json::from_str(&out[n - 1]).unwrap();
    let mut target = &mut v;
    let path: Vec<&str> = field.split('.').collect();
    for key in &path[..path.len() - 1] {
        target = &mut target[*key];
    }
    target[path[path.len() - 1]] = serde_json::from_str(value).unwrap();
    out[n - 1] = serde_json::to_string(&v).unwrap();
    out
}

fn write(name: &str, lines: &[String]) -> PathBuf {
    let path = scratch(name);
    fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    path
}

fn report(path: &Path, extra: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let mut args = vec!["report", "--input", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = mhpscope(&args);
    (out, t.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_huge_nr_pages_is_refused_at_once_naming_file_line_and_field() {
    let lines = real_lines();
    let n = line_of(&lines, "online_pages");
    let path = write(
        "huge.ndjson",
        &with_field(&lines, n, "op.nr_pages", "4611686018427387904"),
    );
    let (out, took) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let want = format!(
        "{}:{n}: online_pages.nr_pages 4611686018427387904 is larger than any machine (2^40 pages)",
        path.display()
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn overflowing_pfns_are_refused() {
    let lines = real_lines();
    let n = line_of(&lines, "online_pages");
    let path = write(
        "pfn-max.ndjson",
        &with_field(&lines, n, "op.pfn", "18446744073709551615"),
    );
    let (out, _) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            ":{n}: online_pages.pfn 18446744073709551615 is beyond the physical address width (52 bits: pfn < 2^40)"
        )),
        "{}",
        stderr(&out)
    );

    // in range alone, past the end with its pages
    let path = write(
        "pfn-end.ndjson",
        &with_field(&lines, n, "op.pfn", "1099511627775"),
    );
    let (out, _) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(":{n}: online_pages.pfn + nr_pages 1099511627775 + ")),
        "{}",
        stderr(&out)
    );

    // a zone span that would wrap around
    let m = line_of(&lines, "move_pfn_range_to_zone");
    let path = write(
        "span.ndjson",
        &with_field(&lines, m, "op.after.start_pfn", "18446744073709551615"),
    );
    let (out, _) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            ":{m}: move_pfn_range_to_zone.after.start_pfn 18446744073709551615 is beyond"
        )),
        "{}",
        stderr(&out)
    );

    // a zone index the header does not name, a node past MAX_NUMNODES
    let path = write("zone.ndjson", &with_field(&lines, n, "op.zone.zone", "9"));
    let (out, _) = report(&path, &[]);
    assert!(stderr(&out).contains(&format!(
        ":{n}: online_pages.zone.zone 9 is not a zone of this recording"
    )));
    let path = write("node.ndjson", &with_field(&lines, n, "op.zone.node", "4096"));
    let (out, _) = report(&path, &[]);
    assert!(stderr(&out).contains(&format!(":{n}: online_pages.zone.node 4096 is not a node")));
}

#[test]
fn a_recording_without_its_summary_is_shown_with_a_warning() {
    let lines = real_lines();
    let full = write("full.ndjson", &lines);
    let (whole, _) = report(&full, &[]);
    assert!(whole.status.success(), "{}", stderr(&whole));

    let cut = &lines[..lines.len() - 1];
    let path = write("nosummary.ndjson", cut);
    let (out, _) = report(&path, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let warning = format!(
        "{} ends at line {} without a summary: the recording was cut short; everything up to there is shown",
        path.display(),
        cut.len()
    );
    assert!(stderr(&out).contains(&warning), "{}", stderr(&out));
    let text = stdout(&out);
    let second = text.lines().nth(1).unwrap_or_default();
    assert_eq!(
        second,
        format!("WARNING: {warning}"),
        "the warning is at the top:\n{text}"
    );
    // everything it holds: the same events as the whole recording
    let first_line = |t: &str| t.lines().next().unwrap_or_default().to_string();
    let events = |l: String| l.split(", ").find(|p| p.ends_with(" events")).map(String::from);
    assert_eq!(events(first_line(&text)), events(first_line(&stdout(&whole))));

    let (json, _) = report(&path, &["--json"]);
    assert!(json.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["truncated"], serde_json::Value::String(warning.clone()));
    let doc: serde_json::Value = serde_json::from_slice(&report(&full, &["--json"]).0.stdout).unwrap();
    assert!(
        doc.get("truncated").is_none(),
        "absent from a whole recording's document"
    );

    let (strict, _) = report(&path, &["--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(
        stderr(&strict).contains("cut short") && stderr(&strict).contains("--strict"),
        "{}",
        stderr(&strict)
    );
    assert!(stdout(&strict).is_empty());
}

#[test]
fn a_last_line_cut_in_the_middle_is_shown_up_to_there() {
    let lines = real_lines();
    let mut text: String = lines[..lines.len() - 1]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    // cut the last event line halfway, no newline (a killed recorder, a full disk)
    let last = lines[lines.len() - 2].len();
    text.truncate(text.len() - 1 - last / 2);
    let path = scratch("cut.ndjson");
    fs::write(&path, &text).unwrap();
    let (out, _) = report(&path, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("ends at line {} without a summary", lines.len() - 1)),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("WARNING:"));

    // cut to nothing but a partial header: nothing to show, an error
    let path = scratch("cut-header.ndjson");
    fs::write(&path, &lines[0][..100]).unwrap();
    let (out, _) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(":1: not a valid recording line: the header line is cut short"),
        "{}",
        stderr(&out)
    );

    // a bad line in the middle stays an error, cut short or not
    let mut bad = lines[..lines.len() - 1].to_vec();
    let half = bad[3].len() / 2;
    bad[3].truncate(half);
    let path = write("bad-middle.ndjson", &bad);
    let (out, _) = report(&path, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(":4: not a valid recording line"),
        "{}",
        stderr(&out)
    );
}

/// Runs `args` with stdout into a pipe whose reader is already gone.
fn into_closed_pipe(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mhpscope"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    Output {
        status,
        stdout: Vec::new(),
        stderr: err.into_bytes(),
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let rec = Path::new(DATA).join("devdax-7.2.ndjson");
    let rec = rec.to_str().unwrap();
    for args in [
        vec!["report", "--input", rec],
        vec!["report", "--input", rec, "--json"],
        vec!["schema", "recording"],
        vec!["schema", "report"],
        vec!["synth", "--blocks", "1000", "--cycles", "100"],
        vec!["probes"],
        vec!["probes", "--json"],
    ] {
        let out = into_closed_pipe(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }

    // as a shell user writes it: the whole pipeline's status with pipefail
    let out = Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -o pipefail; {} report --input {rec} --keep 0 | head -1",
                env!("CARGO_BIN_EXE_mhpscope")
            ),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out).lines().count(), 1);
}

#[test]
fn a_record_that_cannot_start_leaves_an_earlier_recording_alone() {
    // Without root (or on a locked-down kernel) record fails before its header: the file it
    // was told to write must be untouched (never emptied, never moved).
    let path = scratch("earlier.ndjson");
    fs::write(&path, "an earlier recording\n").unwrap();
    let out = mhpscope(&["record", "-o", path.to_str().unwrap(), "--duration", "1s"]);
    if out.status.success() {
        // This machine can trace: the earlier recording was kept as .old.
        let old = scratch("earlier.ndjson.old");
        assert_eq!(fs::read_to_string(old).unwrap(), "an earlier recording\n");
        assert!(stderr(&out).contains("kept it as"), "{}", stderr(&out));
    } else {
        assert_eq!(fs::read_to_string(&path).unwrap(), "an earlier recording\n");
        assert!(!scratch("earlier.ndjson.old").exists());
    }
}
