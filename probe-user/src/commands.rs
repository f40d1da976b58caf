//! The subcommands: wiring between the kernel side, the model and the views.
use std::{
    fs::File,
    io::{self, Write},
    path::PathBuf,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::{
    host::Host,
    loader::{self, Options},
    probes::{contiguity_note, FailureCoverage, ProbeStatus},
    recording::{self, Line},
    report::{fmt_ns, Document},
    source::{self, Input},
    stream::{Stream, Update, ViewOptions},
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

/// `mhpscope synth`: a synthetic recording.
pub fn synth(output: Option<PathBuf>, blocks: u64, nodes: u64, cycles: u64) -> Result<()> {
    let out = create_output(&output)?;
    crate::synth::write_recording(out, blocks, nodes, cycles).context("writing the synthetic recording")?;
    Ok(())
}

/// `mhpscope record`: NDJSON to a file or stdout.
pub fn record(opts: &Options, output: Option<PathBuf>, duration: Option<Duration>) -> Result<()> {
    let out = create_output(&output)?;
    let name = output
        .as_ref()
        .map_or("stdout".into(), |p| p.display().to_string());
    let mut writer = recording::Writer::new(out);
    let feed = source::spawn(Input::Live { duration }, opts);
    let write =
        |w: &mut recording::Writer<_>, line: &Line| w.write(line).with_context(|| format!("writing {name}"));
    loop {
        // Flush whenever the source has nothing waiting: a follower sees events promptly.
        let update = match feed.rx.try_recv() {
            Ok(u) => u,
            Err(_) => {
                writer.flush().with_context(|| format!("writing {name}"))?;
                match feed.rx.recv() {
                    Ok(u) => u,
                    Err(_) => bail!("the tracing thread ended without a summary"),
                }
            }
        };
        match update {
            Update::Header(h) => {
                warn_unattached(&h.probes);
                write(&mut writer, &Line::Header(h))?;
                writer.flush().with_context(|| format!("writing {name}"))?;
                eprintln!("mhpscope: recording to {name}; Ctrl-C to stop");
            }
            Update::Event(ev) => write(&mut writer, &Line::Event(ev))?,
            Update::Events(evs) => {
                for ev in evs {
                    write(&mut writer, &Line::Event(ev))?;
                }
            }
            Update::Summary(s) => {
                write(&mut writer, &Line::Summary(s.clone()))?;
                writer.flush().with_context(|| format!("writing {name}"))?;
                eprintln!(
                    "mhpscope: {} events recorded ({} lost, {} undecodable), stopped by {}",
                    s.events, s.lost_events, s.undecodable_events, s.end_reason
                );
                return Ok(());
            }
            Update::Failed(why) => bail!("{why}"),
        }
    }
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
pub fn report(opts: &Options, input: Input, json: bool, wide: bool, view: ViewOptions) -> Result<()> {
    if let Input::Live { duration: Some(d) } = &input {
        eprintln!(
            "mhpscope: tracing for {}; Ctrl-C to stop early",
            humantime::format_duration(*d)
        );
    }
    let doc = collect(opts, input, view)?;
    let mut stdout = io::stdout().lock();
    let text = if json {
        doc.to_json()
    } else {
        doc.to_text_width(if wide { None } else { terminal_width() })
    };
    writeln!(stdout, "{text}").context("writing the report")?;
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

/// Streams a whole input through the model and builds its report.
pub fn collect(opts: &Options, input: Input, view: ViewOptions) -> Result<Document> {
    let live = input.is_live();
    let mut stream = Stream::new(input.origin()).with_view(view);
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
    if let Some(why) = &stream.failure {
        bail!("{why}");
    }
    match (&stream.summary, stream.document()) {
        (Some(_), Some(doc)) => Ok(doc),
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
        let doc = crate::probes_doc::ProbesDoc {
            schema_version: crate::probes_doc::PROBES_SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            host,
            probes: tracer.probes.clone(),
            offline_failures: tracer.offline_failures.clone(),
            contiguity: crate::probes_doc::Contiguity {
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
