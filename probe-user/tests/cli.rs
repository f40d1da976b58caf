//! The `mhpscope` binary as a user runs it: reports from recordings, bad recordings, and
//! `probes` on whatever kernel the tests run on.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use mhpscope::{
    kernel::frame::{BlockFrame, Frame, NodeFrame, ZoneFrame},
    kernel::host::Host,
    kernel::kernel_btf::default_zone_names,
    kernel::probes::{ProbeStatus, PROBES},
    model::event::{Altmap, Event, Op, Span, ZoneId},
    model::Layout,
    recording::{Clock, Header, Line, Summary, Writer, FORMAT_VERSION},
};

const MIB: u64 = 1 << 20;
const MOVABLE: ZoneId = ZoneId { node: 1, zone: 3 };

fn mhpscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mhpscope"))
        .args(args)
        .output()
        .expect("mhpscope runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mhpscope-cli-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn recording_lines() -> Vec<Line> {
    let header = Header {
        format_version: FORMAT_VERSION,
        tool_version: "test".into(),
        host: Host {
            kernel_release: "6.1.0-test-amd64".into(),
            lockdown: Some("none".into()),
            lockdown_in_kernel_log: false,
            btf_available: true,
            can_trace: true,
        },
        clock: Clock {
            monotonic_ns: 0,
            realtime_ns: 0,
        },
        layout: Layout {
            zone_names: default_zone_names(),
            page_size: 4096,
            struct_page_size: 64,
            block_size_bytes: 128 * MIB,
            page_flags: None,
            features: Default::default(),
        },
        probes: PROBES
            .iter()
            .map(|s| ProbeStatus::attached(s, &s.alternatives[0], Vec::new()))
            .collect(),
        frame: Frame {
            block_size_bytes: 128 * MIB,
            page_size: 4096,
            blocks: vec![BlockFrame {
                id: 4,
                state: "online".into(),
                node: Some(1),
                valid_zones: Some("Normal".into()),
            }]
            .into_iter()
            .collect(),
            nodes: vec![NodeFrame {
                node: 1,
                has_cpu: true,
                has_memory: true,
            }],
            zones: vec![ZoneFrame {
                node: 1,
                zone: "Movable".into(),
                start_pfn: None,
                spanned: 0,
                present: 0,
                managed: 0,
                free: None,
            }],
            config: Default::default(),
        },
    };
    let ev = |ts_ns, duration_ns, op| {
        Line::Event(Event {
            ts_ns,
            duration_ns,
            tid: 9,
            op,
        })
    };
    let span = |start_pfn, spanned_pages| Span {
        start_pfn,
        spanned_pages,
    };
    vec![
        Line::Header(Box::new(header)),
        ev(
            1_000,
            100,
            Op::ArchAddMemory {
                node: 1,
                start: 0x1_0000_0000,
                size: 128 * MIB,
                altmap: Some(Altmap {
                    base_pfn: 0x100000,
                    alloc: 512,
                    align: 0,
                }),
                ret: 0,
            },
        ),
        ev(
            2_000,
            900,
            Op::AddMemoryResource {
                start: 0x1_0000_0000,
                size: 128 * MIB,
                mhp_flags: 6,
                nid_arg: 0,
                ret: 0,
            },
        ),
        ev(
            3_000,
            500,
            Op::MovePfnRangeToZone {
                pfn: 0x100000,
                nr_pages: 0x8000,
                zone: MOVABLE,
                before: span(0, 0),
                after: span(0x100000, 0x8000),
            },
        ),
        ev(
            4_000,
            50,
            Op::SetZoneContiguous {
                zone: MOVABLE,
                entry: false,
                contiguous: false,
                span: span(0x100000, 0x8000),
            },
        ),
        ev(
            5_000,
            2_000,
            Op::OnlinePages {
                pfn: 0x100200,
                nr_pages: 32256,
                zone: MOVABLE,
                ret: 0,
            },
        ),
        Line::Summary(Box::new(Summary {
            events: 5,
            lost_events: 0,
            undecodable_events: 0,
            duration_ns: 10_000,
            end_reason: mhpscope::recording::EndReason::Sigint,
            frame: None,
        })),
    ]
}

fn write_recording(path: &Path, lines: &[Line]) -> String {
    let mut buf = Vec::new();
    {
        let mut w = Writer::new(&mut buf);
        for l in lines {
            w.write(l).unwrap();
        }
        w.flush().unwrap();
    }
    let text = String::from_utf8(buf).unwrap();
    fs::write(path, &text).unwrap();
    text
}

#[test]
fn report_from_a_recording() {
    let path = scratch("good.ndjson");
    write_recording(&path, &recording_lines());
    let out = mhpscope(&["report", "--input", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("kernel 6.1.0-test-amd64"), "{text}");
    let all = format!("{n} probes of {n} attached", n = PROBES.len());
    assert!(text.contains(&all), "{text}");
    assert!(text.contains("self-hosted (altmap)"), "{text}");
    assert!(text.contains("NOT contiguous"), "{text}");

    let out = mhpscope(&["report", "--input", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("report --json is one JSON document");
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["events"], 5);
    assert_eq!(doc["hot_adds"][0]["node"], 1);
    let block = doc["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["first"] == 32 && b["count"] == 1)
        .expect("block 32");
    assert_eq!(block["vmemmap"]["placement"], "self_hosted");
    assert_eq!(block["vmemmap"]["pages"], 512);
    assert_eq!(block["zone"], "Movable");
    assert_eq!(block["state"], "online");
}

#[test]
fn bad_recordings_fail_naming_the_line_and_never_panic() {
    let good = write_recording(&scratch("base.ndjson"), &recording_lines());
    let lines: Vec<&str> = good.lines().collect();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "truncated.ndjson",
            lines[..4].join("\n") + "\n",
            "ends at line 4 without a summary",
        ),
        (
            "cut.ndjson",
            good[..good.len() - 40].to_string(),
            "ends at line 7 without a summary",
        ),
        (
            "corrupt.ndjson",
            good.replacen(r#""kind":"online_pages""#, r#""kind":"0nline_pages""#, 1),
            ":6: not a valid recording line",
        ),
        (
            "garbage.ndjson",
            "\u{7f}ELF\u{2}\u{1}\n".to_string(),
            ":1: not a valid recording line",
        ),
        (
            "empty.ndjson",
            String::new(),
            ":1: not a valid recording line: empty",
        ),
        (
            "noheader.ndjson",
            lines[1..].join("\n"),
            ":1: expected the header line first",
        ),
    ];
    // --strict: a recording cut short is refused too (without, it is shown: tests/recordings.rs)
    for (name, content, expected) in cases {
        let path = scratch(name);
        fs::write(&path, content).unwrap();
        let out = mhpscope(&["report", "--strict", "--input", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected {expected:?} in {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    let out = mhpscope(&["report", "--input", "/nonexistent/rec.ndjson"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rec.ndjson"));
}

/// Runs on the kernel the tests run on (on the development machines: locked down, no fentry).
/// Whatever it finds, it exits 0 and gives every probe a state and, if detached, a reason.
#[test]
fn probes_explains_every_probe() {
    let out = mhpscope(&["probes", "--json"]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let probes = doc["probes"].as_array().unwrap();
    assert_eq!(probes.len(), PROBES.len());
    for p in probes {
        if p["attached"] == true {
            assert_eq!(p["method"], "fentry", "{p}");
        } else {
            let why = p["reason"].as_str().unwrap_or("");
            assert!(why.len() > 10, "a detached probe says why: {p}");
        }
    }
    let out = mhpscope(&["probes"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("of {} probes attached", PROBES.len())),
        "{text}"
    );
}

/// The contiguity-cost counter is off unless asked for, says so and how to turn it on; `--with`
/// takes only probes that are off by default.
#[test]
fn hot_path_counter_is_off_unless_asked_for() {
    let out = mhpscope(&["probes", "--json"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let counter = |doc: &serde_json::Value| {
        doc["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "pageblock_pfn_to_page")
            .cloned()
            .unwrap()
    };
    let off = counter(&doc);
    assert_eq!(off["attached"], false);
    let why = off["reason"].as_str().unwrap();
    assert!(
        why.contains("off by default") && why.contains("--with pageblock_pfn_to_page"),
        "{why}"
    );

    let out = mhpscope(&["--with", "pageblock_pfn_to_page", "probes", "--json"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let asked = counter(&doc);
    // Asked for, it is tried like any other probe (here it may not attach, but not for that).
    assert!(
        !asked["reason"].as_str().unwrap_or("").contains("off by default"),
        "{asked}"
    );

    let out = mhpscope(&["--with", "online_pages", "probes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("on by default"), "{err}");
}

/// No probe attached (all left out here, so on any kernel): exit status 3, distinct from other
/// errors (1) and usage errors (2), for scripts and systemd.
#[test]
fn nothing_attached_has_its_own_exit_status() {
    let all: Vec<&str> = PROBES.iter().map(|p| p.name).collect();
    let skip = all.join(",");
    let out = mhpscope(&["--skip", &skip, "report", "--duration", "1s"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no probe could attach"));
    let out = mhpscope(&["report", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let out = mhpscope(&["report", "--input", "/nonexistent/recording.ndjson"]);
    assert_eq!(out.status.code(), Some(1));
}
