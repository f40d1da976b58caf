//! Decode + model ingest of a realistic mixed event stream (synthetic hotplug cycles of 14
//! records each), as the live loop does it for every ring-buffer record.
//! Goal (BENCHMARKS.md): at least 10 million events per second on one core.
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mhpscope::{
    kernel::decode::{decode, parse_raw},
    model::Model,
    recording::synth::{self, Session},
};
use probe_common::RawEvent;

fn model() -> Model {
    let mut m = Model::new(synth::layout());
    // As on 6.12: memmap_init_range and the page allocations traced themselves.
    m.set_probes(&synth::all_probes_attached());
    m
}

fn ingest(c: &mut Criterion) {
    // 4096 blocks on 4 nodes: 57 344 records, 7 MiB of ring-buffer data.
    let bytes = Session::new(4).bytes(4096);
    let records = (bytes.len() / RawEvent::SIZE) as u64;
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(records));
    g.bench_function("decode", |b| {
        b.iter(|| {
            bytes
                .chunks_exact(RawEvent::SIZE)
                .map(|r| decode(&parse_raw(r).unwrap()).unwrap().ts_ns)
                .sum::<u64>()
        })
    });
    g.bench_function("decode+model", |b| {
        b.iter_batched(
            model,
            |mut m| {
                for r in bytes.chunks_exact(RawEvent::SIZE) {
                    m.ingest(&decode(&parse_raw(r).unwrap()).unwrap());
                }
                m
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
