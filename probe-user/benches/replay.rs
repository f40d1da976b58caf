//! The reading path of `report --input` alone: a synthetic recording (4096 block cycles,
//! 57 344 events, ~11 MB) parsed and checked line by line, and in parallel as `report --input`
//! reads a file. BENCHMARKS.md, "Replay".
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mhpscope::recording::{parallel, Item, Reader};

fn recording() -> (Vec<u8>, u64) {
    let mut text = Vec::new();
    let events = mhpscope::recording::synth::write_recording(&mut text, 1000, 4, 4096, 16).unwrap();
    (text, events)
}

fn replay(c: &mut Criterion) {
    let (text, events) = recording();
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(events));
    g.bench_function("read+check, one thread", |b| {
        b.iter(|| {
            let mut r = Reader::new(&text[..], "bench".into());
            r.header().unwrap();
            let mut n = 0u64;
            while let Some(item) = r.next_item().unwrap() {
                n += matches!(item, Item::Event(_)) as u64;
            }
            n
        })
    });
    g.bench_function("read+check, parallel", |b| {
        b.iter(|| {
            let mut r = Reader::new(&text[..], "bench".into());
            r.header().unwrap();
            let (input, name, lines, checks) = r.into_body();
            let mut n = 0u64;
            parallel::read_body(input, &name, lines, &checks.unwrap(), 2, |batch| {
                n += batch.len() as u64;
                Ok::<(), ()>(())
            })
            .unwrap();
            n
        })
    });
    g.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
