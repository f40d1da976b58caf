//! Where `report --input FILE` spends its time, stage by stage (BENCHMARKS.md, "Replay"):
//! `cargo run --release -p probe-user --example replay_stages -- FILE`
use std::{fs::File, io::Read, time::Instant};

use mhpscope::{
    kernel::loader::Options,
    recording::source::{self, Input},
    recording::stream::{Stream, Update},
    recording::Line,
};

fn main() {
    let path = std::env::args().nth(1).expect("usage: replay_stages FILE");
    let t = Instant::now();
    let mut bytes = Vec::new();
    File::open(&path).unwrap().read_to_end(&mut bytes).unwrap();
    let lines = bytes.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count();
    let per_s = |n: usize, t: Instant| n as f64 / t.elapsed().as_secs_f64() / 1e6;
    println!(
        "read and split the lines:         {:>8.3?} ({lines} lines)",
        t.elapsed()
    );

    let t = Instant::now();
    for l in bytes.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let _: serde::de::IgnoredAny = serde_json::from_slice(l).unwrap();
    }
    println!(
        "serde_json skipping each line:    {:>8.3?} (the floor of any serde parse)",
        t.elapsed()
    );

    let t = Instant::now();
    for l in bytes.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let _: serde_json::Value = serde_json::from_slice(l).unwrap();
    }
    println!("serde_json::Value per line:       {:>8.3?}", t.elapsed());

    let t = Instant::now();
    for l in bytes.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let _: Line = serde_json::from_slice(l).unwrap();
    }
    println!(
        "recording::Line per line, 1 core: {:>8.3?} ({:.2} M lines/s)",
        t.elapsed(),
        per_s(lines, t)
    );

    // The source `report --input` reads from: parsed and checked in parallel, in batches.
    let t = Instant::now();
    let feed = source::spawn(
        Input::File {
            path: path.clone().into(),
            follow: false,
        },
        &Options::default(),
    );
    let mut events = 0;
    for u in feed.rx.iter() {
        match u {
            Update::Events(evs) => events += evs.len(),
            Update::Event(_) => events += 1,
            Update::Failed(why) => panic!("{why}"),
            _ => {}
        }
    }
    println!(
        "source (read, parse, check):      {:>8.3?} ({:.2} M events/s)",
        t.elapsed(),
        per_s(events, t)
    );

    let t = Instant::now();
    let feed = source::spawn(
        Input::File {
            path: path.clone().into(),
            follow: false,
        },
        &Options::default(),
    );
    let mut stream = Stream::new(path.clone());
    for u in feed.rx.iter() {
        stream.apply(u);
    }
    println!(
        "source + model:                   {:>8.3?} ({:.2} M events/s)",
        t.elapsed(),
        per_s(events, t)
    );

    let t = Instant::now();
    let doc = mhpscope::views::report::Document::of_stream(&stream, Default::default()).expect("a header");
    println!("Document::build:                  {:>8.3?}", t.elapsed());
    let t = Instant::now();
    let text = doc.to_text();
    println!(
        "to_text:                          {:>8.3?} ({} bytes)",
        t.elapsed(),
        text.len()
    );
}
