//! `cargo xtask soak`: mhpscope left running. A synthetic VM resizing the same blocks over and
//! over (a million block cycles, `mhpscope synth --slots`): `serve` fed all of it while scraped,
//! its peak resident memory; `report --input` of the same recording, its speed beside the same
//! run's `wc -l` of the file (the floor of reading it) and its peak memory; then `serve` of a
//! 100 000-block host under concurrent scrapers, scrape latency and memory before and after.
//! Goals (issue 15, BENCHMARKS.md): serve < 64 MB, report < 128 MB and >= 2 M events/s.

use crate::dashboard_test::{agent, get, Serve};
use crate::{build_cmd, util};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct SoakArgs {
    /// Block cycles (hot-add, online, offline, remove: 14 events each) of the long recording.
    #[arg(long, default_value_t = 1_000_000)]
    pub cycles: u64,
    /// Blocks the cycles rotate over.
    #[arg(long, default_value_t = 64)]
    pub slots: u64,
    /// Scrapes of `serve` while it reads the long recording.
    #[arg(long, default_value_t = 100)]
    pub scrapes: u64,
    /// Blocks of the host `serve` is loaded with.
    #[arg(long, default_value_t = 100_000)]
    pub load_blocks: u64,
    #[arg(long, default_value_t = 8)]
    pub scrapers: u64,
    #[arg(long, default_value_t = 1000)]
    pub per_scraper: u64,
}

const GOAL_SERVE_RSS: u64 = 64_000_000;
const GOAL_REPORT_RSS: u64 = 128_000_000;
const GOAL_EVENTS_PER_S: f64 = 2e6;

pub fn run(args: &SoakArgs) -> Result<()> {
    let bin = build_cmd::run(true)?;
    let out = util::repo_root().join("target").join("bench").join("soak");
    std::fs::create_dir_all(&out)?;
    let long = out.join("cycles.ndjson");
    synth(&bin, &long, 1000, args.cycles, args.slots)?;
    let events = args.cycles * 14;
    let size = std::fs::metadata(&long)?.len();
    println!(
        "soak: {} cycles over {} blocks: {events} events, {:.0} MB of NDJSON",
        args.cycles,
        args.slots,
        size as f64 / 1e6
    );

    let floor = timed(Command::new("wc").arg("-l").arg(&long))?;
    let report = crate::bench::scale::measure(
        Command::new(&bin).args(["report", "-i"]).arg(&long),
        &out.join("report.txt"),
    )?;
    let per_s = events as f64 / report.wall.as_secs_f64();
    println!(
        "soak: report --input: {:.2} s, {:.2} M events/s ({:.0} MB/s), {:.1} MB peak resident; wc -l of the file: {:.2} s \
         (goals >= {:.0} M events/s: {}, < {} MB: {})",
        report.wall.as_secs_f64(),
        per_s / 1e6,
        size as f64 / 1e6 / report.wall.as_secs_f64(),
        report.max_rss_bytes as f64 / 1e6,
        floor.as_secs_f64(),
        GOAL_EVENTS_PER_S / 1e6,
        met(per_s >= GOAL_EVENTS_PER_S),
        GOAL_REPORT_RSS / 1_000_000,
        met(report.max_rss_bytes < GOAL_REPORT_RSS)
    );

    let a = agent();
    let serve = Serve::start(&bin, &long)?;
    let t = Instant::now();
    let mut scraped = 0;
    while scraped < args.scrapes {
        let (status, _) = get(&a, &serve.url(), None)?;
        if status != 200 {
            bail!("scrape {scraped}: HTTP {status}");
        }
        scraped += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    serve.wait_until_ended_within(&a, Duration::from_secs(1800))?;
    let serve_hwm = status_kib(serve.pid(), "VmHWM")? * 1024;
    println!(
        "soak: serve fed {events} events, scraped {scraped} times (and until it ended, {:.1} s): {:.1} MB peak resident \
         (goal < {} MB: {})",
        t.elapsed().as_secs_f64(),
        serve_hwm as f64 / 1e6,
        GOAL_SERVE_RSS / 1_000_000,
        met(serve_hwm < GOAL_SERVE_RSS)
    );
    drop(serve);

    let host = out.join("host.ndjson");
    synth(&bin, &host, args.load_blocks, 1000, 0)?;
    let serve = Serve::start(&bin, &host)?;
    serve.wait_until_ended_within(&a, Duration::from_secs(600))?;
    let before = status_kib(serve.pid(), "VmRSS")? * 1024;
    let url = serve.url();
    let t = Instant::now();
    let threads: Vec<_> = (0..args.scrapers)
        .map(|_| {
            let (url, n) = (url.clone(), args.per_scraper);
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                let a = agent();
                let mut took = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let t = Instant::now();
                    let (status, _) = get(&a, &url, None)?;
                    if status != 200 {
                        bail!("HTTP {status}");
                    }
                    took.push(t.elapsed());
                }
                Ok(took)
            })
        })
        .collect();
    let mut all = Vec::new();
    for th in threads {
        all.extend(th.join().map_err(|_| anyhow::anyhow!("a scraper panicked"))??);
    }
    let wall = t.elapsed();
    let after = status_kib(serve.pid(), "VmRSS")? * 1024;
    all.sort_unstable();
    let pct = |p: usize| all[(all.len() * p / 100).min(all.len() - 1)];
    println!(
        "soak: serve of a {}-block host, {} scrapers x {} scrapes in {:.1} s: p50 {:.2} ms, p99 {:.2} ms; \
         resident {:.1} MB before, {:.1} MB after",
        args.load_blocks,
        args.scrapers,
        args.per_scraper,
        wall.as_secs_f64(),
        pct(50).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3,
        before as f64 / 1e6,
        after as f64 / 1e6
    );
    let path = out.join("soak.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({
            "cycles": args.cycles, "slots": args.slots, "events": events, "recording_bytes": size,
            "wc_l_s": floor.as_secs_f64(),
            "report": {"wall_s": report.wall.as_secs_f64(), "events_per_s": per_s, "max_rss_bytes": report.max_rss_bytes},
            "serve_fed": {"scrapes": scraped, "max_rss_bytes": serve_hwm},
            "serve_load": {
                "blocks": args.load_blocks, "scrapers": args.scrapers, "per_scraper": args.per_scraper,
                "p50_ms": pct(50).as_secs_f64() * 1e3, "p99_ms": pct(99).as_secs_f64() * 1e3,
                "rss_before_bytes": before, "rss_after_bytes": after,
            },
        }))?,
    )?;
    println!("soak: figures in {}", path.display());
    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn synth(bin: &Path, out: &Path, blocks: u64, cycles: u64, slots: u64) -> Result<()> {
    util::run(
        Command::new(bin)
            .args(["synth", "--blocks", &blocks.to_string(), "--nodes", "4"])
            .args([
                "--cycles",
                &cycles.to_string(),
                "--slots",
                &slots.to_string(),
                "-o",
            ])
            .arg(out),
    )
}

fn timed(cmd: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("{cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?}: {status}");
    }
    Ok(t.elapsed())
}

/// A `/proc/PID/status` figure in KiB (VmRSS, VmHWM).
fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix(':')?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}
