//! The subcommands: wiring between the kernel side, the model and the views.
use std::{
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::{
    kernel::host::Host,
    kernel::loader::{self, Options},
    kernel::probes::{contiguity_note, FailureCoverage, ProbeStatus},
    recording::source::{self, Input},
    recording::stream::{Stream, Update},
    recording::{self, Line},
    views::report::{fmt_ns, Document},
    views::ViewOptions,
};

/// A file, or stdout for none or `-`.
fn create_output(output: &Option<PathBuf>) -> Result<Box<dyn Write>> {
    Ok(match output {
        Some(p) if p.as_os_str() != "-" => {
            Box::new(File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        _ => Box::new(io::stdout().lock()),
    })
}

/// Whether `e` comes from writing into a closed pipe (`mhpscope ... | head`): the reader has
/// what it wanted, and mhpscope ends quietly, as other Unix tools do.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Before `record -o FILE` writes: an earlier recording at FILE becomes FILE.old (as perf
/// keeps perf.data.old), replacing an older FILE.old. Only regular files move (not
/// /dev/null or a FIFO). Returns where it went.
pub fn keep_earlier_recording(path: &Path) -> io::Result<Option<PathBuf>> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {
            let mut old = path.as_os_str().to_owned();
            old.push(".old");
            let old = PathBuf::from(old);
            std::fs::rename(path, &old)?;
            Ok(Some(old))
        }
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `mhpscope synth`: a synthetic recording.
pub fn synth(output: Option<PathBuf>, blocks: u64, nodes: u64, cycles: u64, slots: u64) -> Result<()> {
    let out = create_output(&output)?;
    crate::recording::synth::write_recording(out, blocks, nodes, cycles, slots)
        .context("writing the synthetic recording")?;
    Ok(())
}

/// `mhpscope record`: NDJSON to a file or stdout. The file is created once tracing works
/// (the header is ready): an earlier recording there becomes FILE.old then, and a record that
/// cannot attach leaves it alone. A write error (a full disk) stops tracing; the summary is
/// still tried, and the error says how far the recording got.
pub fn record(opts: &Options, output: Option<PathBuf>, duration: Option<Duration>) -> Result<()> {
    let output = output.filter(|p| p.as_os_str() != "-");
    let name = output
        .as_ref()
        .map_or("stdout".into(), |p| p.display().to_string());
    let open = || -> Result<recording::Writer<Box<dyn Write>>> {
        if let Some(p) = &output {
            let moved = keep_earlier_recording(p)
                .with_context(|| format!("moving the earlier {} out of the way", p.display()))?;
            if let Some(old) = moved {
                eprintln!("mhpscope: {} existed: kept it as {}", p.display(), old.display());
            }
        }
        Ok(recording::Writer::new(create_output(&output)?))
    };
    let feed = source::spawn(Input::Live { duration }, opts);
    let first = match feed.rx.recv() {
        Ok(Update::Header(h)) => h,
        Ok(Update::Failed(f)) => return Err(f.into()),
        Ok(_) | Err(_) => bail!("the tracing thread ended without a header"),
    };
    warn_unattached(&first.probes);
    let mut writer = open()?;
    let mut pending = Some(Update::Header(first));
    let mut written = 0u64;
    let failed = loop {
        // Flush whenever the source has nothing waiting: a follower sees events promptly.
        let update = match pending.take().map_or_else(|| feed.rx.try_recv(), Ok) {
            Ok(u) => u,
            Err(_) => {
                if let Err(e) = writer.flush() {
                    break e;
                }
                match feed.rx.recv() {
                    Ok(u) => u,
                    Err(_) => bail!("the tracing thread ended without a summary"),
                }
            }
        };
        let result = match update {
            Update::Header(h) => {
                let r = writer.write(&Line::Header(h)).and_then(|()| writer.flush());
                if r.is_ok() {
                    eprintln!("mhpscope: recording to {name}; Ctrl-C to stop");
                }
                r
            }
            Update::Event(ev) => writer.write(&Line::Event(ev)).map(|()| written += 1),
            Update::Events(evs) => evs
                .into_iter()
                .try_for_each(|ev| writer.write(&Line::Event(ev)).map(|()| written += 1)),
            Update::Summary(s) => {
                writer
                    .write(&Line::Summary(s.clone()))
                    .and_then(|()| writer.flush())
                    .with_context(|| format!("writing the summary to {name}"))?;
                eprintln!(
                    "mhpscope: {} events recorded ({} lost, {} undecodable), stopped by {}",
                    s.events, s.lost_events, s.undecodable_events, s.end_reason
                );
                return Ok(());
            }
            Update::Failed(f) => return Err(f.into()),
            Update::Truncated(why) => bail!("{why}"),
        };
        if let Err(e) = result {
            break e;
        }
    };
    // Writing failed. Into a closed pipe: the reader is gone, so are we (quietly: main).
    if failed.kind() == io::ErrorKind::BrokenPipe {
        return Err(anyhow::Error::new(failed).context(format!("writing {name}")));
    }
    // Otherwise (a full disk): stop tracing, and try to end the file with its summary.
    feed.stop();
    let summary = feed.rx.iter().find_map(|u| match u {
        Update::Summary(s) => Some(s),
        _ => None,
    });
    let ending = match summary {
        Some(s) => match writer.write(&Line::Summary(s)).and_then(|()| writer.flush()) {
            Ok(()) => "its summary was written after them".to_string(),
            Err(e) => format!("its summary could not be written either ({e}): readers show it as cut short"),
        },
        None => "the tracing thread gave no summary: readers show it as cut short".to_string(),
    };
    bail!("writing {name}: {failed}: recording stopped; {written} events written before, {ending}")
}

fn warn_unattached(probes: &[ProbeStatus]) {
    for p in probes.iter().filter(|p| !p.attached) {
        eprintln!(
            "mhpscope: probe {} not attached: {}",
            p.name,
            p.reason.as_deref().unwrap_or("?")
        );
    }
}

/// `mhpscope report`: live for a while, or from a recording (a file, a growing file, stdin).
/// A recording cut short is shown with a warning, unless `strict`.
pub fn report(
    opts: &Options,
    input: Input,
    json: bool,
    wide: bool,
    strict: bool,
    view: ViewOptions,
) -> Result<()> {
    if let Input::Live { duration: Some(d) } = &input {
        eprintln!(
            "mhpscope: tracing for {}; Ctrl-C to stop early",
            humantime::format_duration(*d)
        );
    }
    let doc = collect(opts, input, view)?;
    if let Some(warning) = &doc.truncated {
        if strict {
            bail!("{warning} (refused: --strict)");
        }
        eprintln!("mhpscope: warning: {warning}");
    }
    let mut stdout = io::stdout().lock();
    let text = if json {
        doc.to_json()
    } else {
        doc.to_text_width(if wide { None } else { terminal_width() })
    };
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .context("writing the report")?;
    Ok(())
}

/// The terminal's width when stdout is one ($COLUMNS first, as shells set it); None for files
/// and pipes, which get the tables whole.
fn terminal_width() -> Option<u16> {
    use std::io::IsTerminal;
    if !io::stdout().is_terminal() {
        return None;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .or_else(|| ratatui::crossterm::terminal::size().ok().map(|(w, _)| w))
        .filter(|&w| w >= 40)
}

/// Streams a whole input through the model and builds its report; a recording cut short
/// gives the report of what it holds, its `truncated` set.
pub fn collect(opts: &Options, input: Input, view: ViewOptions) -> Result<Document> {
    let live = input.is_live();
    let mut stream = Stream::new(input.origin()).with_keep(view.keep);
    let feed = source::spawn(input, opts);
    for update in feed.rx.iter() {
        if live {
            if let Update::Header(h) = &update {
                warn_unattached(&h.probes);
            }
        }
        stream.apply(update);
        if stream.ended() {
            break;
        }
    }
    if let Some(f) = &stream.failure {
        return Err(f.clone().into());
    }
    // A summary, or a recording cut short (the document says so): everything it holds.
    match (
        stream.summary.is_some() || stream.truncated.is_some(),
        Document::of_stream(&stream, view.thresholds),
    ) {
        (true, Some(doc)) => Ok(doc),
        _ => bail!("the source ended without a summary"),
    }
}

/// One row per probe: the chosen way, what it loses, and why each better way failed.
pub fn probes_table(probes: &[ProbeStatus]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header(vec![
        "probe",
        "function",
        "attached",
        "how",
        "loses / why not",
    ]);
    for p in probes {
        let mut notes: Vec<String> = Vec::new();
        if let Some(l) = &p.loses {
            notes.push(format!("loses: {l}"));
        }
        for a in &p.tried {
            notes.push(format!("{} {}: {}", a.way.describe(), a.function, a.error));
        }
        if notes.is_empty() {
            if let Some(r) = &p.reason {
                notes.push(r.clone());
            }
        }
        t.add_row(vec![
            p.name.clone(),
            p.function.clone(),
            if p.attached { "yes" } else { "no" }.to_string(),
            p.method.map_or("-", |m| m.describe()).to_string(),
            notes.join("\n"),
        ]);
    }
    t
}

/// offline_pages' failure reasons: the step that reveals each, the probes it needs, and whether
/// this kernel has the step and mhpscope attached what it needs.
pub fn offline_failures_table(rows: &[FailureCoverage]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header(vec![
        "offline_pages reason",
        "revealed by",
        "probes",
        "kernels",
        "here",
    ]);
    for r in rows {
        t.add_row(vec![
            r.kernel_words.clone(),
            r.step.clone(),
            r.probes.join(", "),
            r.kernels.clone(),
            r.status(),
        ]);
    }
    t
}

/// The self-cost of mhpscope instances running on this host (a recorder, top, serve).
fn self_cost_text(tracer: &loader::Tracer) -> String {
    let costs = match loader::running_instance_costs(tracer) {
        Ok(c) => c,
        Err(e) => return format!("self-cost of running mhpscope instances: unavailable ({e})"),
    };
    if costs.is_empty() {
        return "self-cost: no other mhpscope instance is running (record, top or serve show theirs)".into();
    }
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_header(vec!["probe", "runs", "avg per run", "total"]);
    for (probe, c) in &costs {
        t.add_row(vec![
            probe.clone(),
            c.runs.to_string(),
            fmt_ns(c.avg_ns()),
            fmt_ns(c.run_time_ns),
        ]);
    }
    let note = match &tracer.stats_error {
        Some(e) => format!(" (run-time statistics could not be enabled: {e})"),
        None => String::new(),
    };
    format!("Self-cost of running mhpscope instances (BPF run-time statistics){note}\n{t}")
}

/// `mhpscope probes`: every probe, attached or not, how, and why not. Exits 0 either way:
/// explaining is its job.
pub fn probes(opts: &Options, json: bool) -> Result<()> {
    let host = Host::detect();
    let tracer = loader::load(&host, opts);
    let mut stdout = io::stdout().lock();
    if json {
        let doc = crate::views::probes_doc::ProbesDoc {
            schema_version: crate::views::probes_doc::PROBES_SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            host,
            probes: tracer.probes.clone(),
            offline_failures: tracer.offline_failures.clone(),
            contiguity: crate::views::probes_doc::Contiguity {
                from_pages_with_online_memmap: tracer.facts.contiguity_from_counter,
                note: contiguity_note(tracer.facts.contiguity_from_counter).into(),
            },
        };
        writeln!(stdout, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    writeln!(
        stdout,
        "kernel {}; lockdown: {}; BTF: {}; privileges: {}",
        host.kernel_release,
        host.lockdown_description(),
        if host.btf_available { "yes" } else { "no" },
        if host.can_trace {
            "CAP_BPF+CAP_PERFMON"
        } else {
            "missing CAP_BPF/CAP_PERFMON"
        }
    )?;
    writeln!(stdout, "{}", probes_table(&tracer.probes))?;
    writeln!(
        stdout,
        "{} of {} probes attached",
        tracer.attached(),
        tracer.probes.len()
    )?;
    if !tracer.offline_failures.is_empty() {
        writeln!(
            stdout,
            "\nWhy an offline failed: offline_pages' reasons and the step that reveals each\n{}",
            offline_failures_table(&tracer.offline_failures)
        )?;
        writeln!(
            stdout,
            "Zone contiguity: {}",
            contiguity_note(tracer.facts.contiguity_from_counter)
        )?;
    }
    if tracer.attached() > 0 {
        writeln!(stdout, "\n{}", self_cost_text(&tracer))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_recording_is_kept_as_old() {
        let dir = std::env::temp_dir().join(format!("mhpscope-keep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rec = dir.join("hp.ndjson");
        assert_eq!(keep_earlier_recording(&rec).unwrap(), None, "nothing there yet");

        std::fs::write(&rec, "first\n").unwrap();
        let old = keep_earlier_recording(&rec).unwrap().unwrap();
        assert_eq!(old, dir.join("hp.ndjson.old"));
        assert!(!rec.exists());
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "first\n");

        // the next one replaces the .old, as perf does
        std::fs::write(&rec, "second\n").unwrap();
        keep_earlier_recording(&rec).unwrap();
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "second\n");

        // not a regular file: left alone
        assert_eq!(keep_earlier_recording(Path::new("/dev/null")).unwrap(), None);
        assert_eq!(keep_earlier_recording(&dir).unwrap(), None);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn broken_pipes_are_told_apart() {
        let pipe =
            anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing the report");
        assert!(is_broken_pipe(&pipe));
        let full =
            anyhow::Error::new(io::Error::from(io::ErrorKind::StorageFull)).context("writing hp.ndjson");
        assert!(!is_broken_pipe(&full));
    }
}
