//! The answers of a real lab recording (tests/data/failures-6.12.ndjson, the `failures` scenario
//! on Debian's 6.12) against what that guest's own kernel log said, written down here once:
//!
//! ```text
//! memory offlining [mem 0x38000000-0x3fffffff] failed due to memory holes
//! page: refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x100000
//! flags: 0x57ffffc0000040(head|node=1|zone=2|lastcpupid=0x1fffff)
//! page_type: f5(slab)
//! page dumped because: unmovable page
//! memory offlining [mem 0x100000000-0x107ffffff] failed due to failure to isolate range
//! memory offlining [mem 0x108000000-0x10fffffff] failed due to notifier failure
//! memory offlining [mem 0x108000000-0x10fffffff] failed due to signal backoff
//! ```
//!
//! and what its shell saw: memory0 refused with EINVAL (it spans DMA and DMA32), ENOMEM injected
//! into MEM_GOING_OFFLINE and then MEM_GOING_ONLINE (memory34), SIGTERM during memory33's offline.
use std::{path::Path, process::Command};

use serde_json::Value;

fn report() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/failures-6.12.ndjson");
    let out = Command::new(env!("CARGO_BIN_EXE_mhpscope"))
        .args(["report", "--json", "--online-grace", "5s", "--input"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn failed_attempts_are_the_kernel_logs() {
    let doc = report();
    let failed: Vec<(String, u64, String, String)> = doc["answers"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["ret"] != 0)
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_string(),
                a["block"].as_u64().unwrap(),
                a["errno"].as_str().unwrap().to_string(),
                a["reason_words"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        (
            "offline",
            0,
            "EINVAL",
            "block has holes or spans zones (no single zone)",
        ),
        ("offline", 7, "EINVAL", "memory holes"),
        ("offline", 32, "EBUSY", "failure to isolate range"),
        ("offline", 33, "ENOMEM", "notifier failure"),
        ("online", 34, "ENOMEM", "notifier failure"),
        ("offline", 33, "EINTR", "signal backoff"),
    ];
    let want: Vec<(String, u64, String, String)> = want
        .iter()
        .map(|(k, b, e, r)| (k.to_string(), *b, e.to_string(), r.to_string()))
        .collect();
    assert_eq!(failed, want);
}

#[test]
fn the_blocking_page_is_the_one_the_kernel_dumped() {
    let doc = report();
    let a = doc["answers"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["reason"] == "failure_to_isolate_range")
        .expect("the isolation failure");
    let p = &a["blocking_page"];
    assert_eq!(p["pfn"], 0x100000);
    assert_eq!(p["flags"], serde_json::json!(["head"]));
    assert_eq!(p["page_type"], "slab");
    assert_eq!(
        (p["node"].as_u64(), p["zone"].as_str()),
        (Some(1), Some("Normal"))
    );
    assert_eq!(
        (p["refcount"].as_i64(), p["mapcount"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(p["dump_reason"], "unmovable page");
}
