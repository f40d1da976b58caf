//! The JSON Schemas under schema/ at the repository root: the committed files are what
//! `mhpscope schema` prints, real recordings and their reports validate against them, and they
//! reject what mhpscope never writes (so they are not vacuous).
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use jsonschema::Validator;
use mhpscope::{
    model::event::{AddMoment, Event, NotifyAction, OnlineType, Op, ZoneId},
    recording::{Line, FORMAT_VERSION},
    views::probes_doc::PROBES_SCHEMA_VERSION,
    views::report::SCHEMA_VERSION,
};
use serde_json::{json, Value};

fn mhpscope(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mhpscope"))
        .args(args)
        .output()
        .expect("mhpscope runs");
    assert!(
        out.status.success(),
        "mhpscope {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The versioned file names: bumping a version makes the old file stale and needs a new one.
fn schema_files() -> [(&'static str, PathBuf); 3] {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    [
        (
            "probes",
            dir.join(format!("probes.v{PROBES_SCHEMA_VERSION}.schema.json")),
        ),
        (
            "recording",
            dir.join(format!("recording.v{FORMAT_VERSION}.schema.json")),
        ),
        (
            "report",
            dir.join(format!("report.v{SCHEMA_VERSION}.schema.json")),
        ),
    ]
}

fn validator(of: &str) -> Validator {
    let files = schema_files();
    let (_, path) = files
        .iter()
        .find(|(name, _)| *name == of)
        .expect("a known schema");
    validator_at(path)
}

/// The committed schema of an earlier recording format: recordings of that format (still read)
/// validate against it, frozen as it was.
fn recording_validator(version: u64) -> Validator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    validator_at(&dir.join(format!("recording.v{version}.schema.json")))
}

/// The version a fixture's header names.
fn fixture_format(path: &Path) -> u64 {
    let text = fs::read_to_string(path).unwrap();
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    header["format_version"]
        .as_u64()
        .expect("a header with format_version")
}

fn validator_at(path: &Path) -> Validator {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every error, with where in the instance it is.
fn errors(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect()
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no recordings in {}", dir.display());
    paths
}

/// Line `n` (1-based) of a fixture, parsed.
fn fixture_line(name: &str, n: usize) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = fs::read_to_string(path).unwrap();
    serde_json::from_str(text.lines().nth(n - 1).unwrap()).unwrap()
}

#[test]
fn committed_schemas_are_current() {
    for (of, path) in schema_files() {
        let printed = mhpscope(&["schema", of]);
        let committed = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == printed,
            "{} is not what `mhpscope schema {of}` prints; regenerate it from the repository root with\n  \
             cargo run -p probe-user --bin mhpscope -- schema {of} > schema/{}",
            path.display(),
            path.file_name().unwrap().to_string_lossy()
        );
        let schema: Value = serde_json::from_str(&committed).unwrap();
        assert_eq!(
            schema["$id"],
            format!(
                "urn:mhpscope:schema:{of}:v{}",
                match of {
                    "recording" => FORMAT_VERSION,
                    "report" => SCHEMA_VERSION,
                    _ => PROBES_SCHEMA_VERSION,
                }
            )
        );
        // A valid draft 2020-12 schema, so any validator takes it.
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("{}: not a valid JSON Schema: {e}", path.display());
        }
    }
}

#[test]
fn every_fixture_line_validates() {
    for path in fixtures() {
        let v = recording_validator(fixture_format(&path));
        let text = fs::read_to_string(&path).unwrap();
        let mut lines = 0;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let instance: Value = serde_json::from_str(line).unwrap();
            let errs = errors(&v, &instance);
            assert!(
                errs.is_empty(),
                "{}:{}: {}",
                path.display(),
                i + 1,
                errs.join("\n")
            );
            lines += 1;
        }
        assert!(lines >= 2, "{}: no lines", path.display());
    }
}

/// Kinds the fixtures happen not to contain, written the way `mhpscope record` writes them.
#[test]
fn kinds_missing_from_the_fixtures_validate() {
    let v = validator("recording");
    let zone = ZoneId { node: 1, zone: 2 };
    let ops = [
        Op::LostEventsSample { total: 3 },
        Op::BlockOnline {
            pfn: 0x100000,
            requested: OnlineType::OnlineKernel,
            node: 1,
            zone: Some(zone),
            policy: Some(mhpscope::model::event::OnlinePolicy {
                policy: mhpscope::model::event::OnlinePolicyKind::AutoMovable,
                auto_movable_ratio: Some(301),
            }),
            ret: 0,
        },
        Op::BlockOffline {
            pfn: 0,
            node: 0,
            zone: None,
            ret: -22,
        },
        Op::IsolateRange {
            pfn: 0x100000,
            nr_pages: 32768,
            ret: -16,
        },
        Op::MemoryNotify {
            action: NotifyAction::GoingOffline,
            ret: -12,
        },
        Op::NodeNotify { action: 8, ret: 0 },
        Op::WalkSystemRam {
            pfn: 0x38000,
            nr_pages: 32768,
            ram_pages: 32736,
        },
        Op::DissolveHugePages {
            pfn: 1,
            end_pfn: 2,
            ret: 0,
        },
        Op::TestPagesIsolated {
            pfn: 1,
            end_pfn: 3,
            fin_pfn: 2,
        },
        Op::MigratePages {
            succeeded: 3,
            failed: 0,
            reason: 2,
        },
        Op::DumpPage {
            pfn: 0x100400,
            flags: 0x57ffffc0000000,
            refcount: 1,
            mapcount: -1,
            page_type: u32::MAX,
            reason: "unmovable page".into(),
        },
        Op::NodeFreePages {
            node: 1,
            free_pages: 1000,
            moment: AddMoment::Before,
            window_pfn: 0x100000,
        },
        Op::ReportingRegister {
            order: Some(9),
            device_order: -1,
            capacity: None,
            ret: 0,
        },
        Op::ReportingCycle {
            totals_known: true,
            reports: 8,
            failed: 0,
            bytes: 512 << 20,
            isolated_pages: 512 << 8,
        },
        Op::PageReport {
            zone: Some(zone),
            nents: 32,
            bytes: 64 << 20,
            orders: 1 << 9,
            first_pfn: Some(0x100200),
            in_seen_cycle: Some(true),
            ret: 0,
        },
        Op::PageReport {
            zone: None,
            nents: 1,
            bytes: 2 << 20,
            orders: 1 << 9,
            first_pfn: None,
            in_seen_cycle: Some(false),
            ret: -5,
        },
        Op::ReportedPagesSample {
            zone,
            order: 9,
            isolated: 256,
            putback: 256,
        },
        Op::ReportingRequestsSample { calls: 17 },
        Op::ReportingOrderSample { order: -1 },
    ];
    for op in ops {
        let line = Line::Event(Event {
            ts_ns: 10,
            duration_ns: 0,
            tid: 0,
            op,
        });
        let instance = serde_json::to_value(&line).unwrap();
        let errs = errors(&v, &instance);
        assert!(errs.is_empty(), "{instance}: {}", errs.join("\n"));
    }
}

/// `probes --json` works anywhere (it says per probe why not where nothing attaches).
#[test]
fn probes_json_validates() {
    let doc: Value = serde_json::from_str(&mhpscope(&["probes", "--json"])).unwrap();
    let errs = errors(&validator("probes"), &doc);
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    assert_eq!(doc["schema_version"], PROBES_SCHEMA_VERSION);
    let mut bad = doc.clone();
    bad["probes"][0]["attached"] = json!("yes");
    assert!(!validator("probes").is_valid(&bad), "a string for attached");
}

#[test]
fn every_fixture_report_validates() {
    let v = validator("report");
    for path in fixtures() {
        let out = mhpscope(&["report", "--json", "-i", path.to_str().unwrap()]);
        let doc: Value = serde_json::from_str(&out).expect("report --json is one JSON document");
        let errs = errors(&v, &doc);
        assert!(
            errs.is_empty(),
            "report of {}: {}",
            path.display(),
            errs.join("\n")
        );
    }
}

/// `good` validates; after `spoil` it does not.
fn assert_rejected(v: &Validator, good: Value, spoil: impl FnOnce(&mut Value), what: &str) {
    assert!(
        v.is_valid(&good),
        "{what}: the unspoiled instance should validate"
    );
    let mut bad = good;
    spoil(&mut bad);
    assert!(!v.is_valid(&bad), "{what}: accepted {bad}");
}

#[test]
fn schemas_reject_what_mhpscope_never_writes() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hotplug-6.1.ndjson");
    let recording = recording_validator(fixture_format(&fixture));
    let header = fixture_line("hotplug-6.1.ndjson", 1);
    let event = fixture_line("hotplug-6.1.ndjson", 2);
    assert_eq!(
        (&header["type"], &event["type"]),
        (&json!("header"), &json!("event"))
    );

    assert_rejected(
        &recording,
        event.clone(),
        |e| e["op"]["kind"] = json!("no_such_kind"),
        "unknown op kind",
    );
    assert_rejected(
        &recording,
        header.clone(),
        |h| {
            h.as_object_mut().unwrap().remove("layout");
        },
        "header without layout",
    );
    assert_rejected(
        &recording,
        header,
        |h| {
            h["host"].as_object_mut().unwrap().remove("kernel_release");
        },
        "header without host.kernel_release",
    );
    assert_rejected(
        &recording,
        event.clone(),
        |e| e["ts_ns"] = json!(e["ts_ns"].to_string()),
        "ts_ns as a string",
    );
    assert_rejected(
        &recording,
        event,
        |e| e["type"] = json!("footer"),
        "unknown line type",
    );

    let report = validator("report");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hotplug-6.1.ndjson");
    let doc: Value =
        serde_json::from_str(&mhpscope(&["report", "--json", "-i", path.to_str().unwrap()])).unwrap();
    assert_rejected(
        &report,
        doc.clone(),
        |d| d["schema_version"] = json!(SCHEMA_VERSION.to_string()),
        "schema_version as a string",
    );
    assert_rejected(
        &report,
        doc,
        |d| d["blocks"][0]["vmemmap"]["placement"] = json!("somewhere"),
        "unknown vmemmap placement",
    );
}
