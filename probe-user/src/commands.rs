//! The subcommands: wiring between the kernel side, the model and the views.
use std::{
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::{
    frame::{self, Frame},
    host::Host,
    live,
    loader::{self, Options, Tracer},
    model::{Layout, Model},
    probes::ProbeStatus,
    recording::{self, Header, Item, Line, Reader, Summary},
    report::{Document, Source},
};

// Commands are async because aya-log's kernel-log reader runs on the tokio runtime.

/// A loaded tracer with everything needed to interpret its events.
struct Session {
    signals: live::StopSignals,
    host: Host,
    tracer: Tracer,
    frame: Frame,
    layout: Layout,
}

fn start_session(opts: &Options) -> Result<Session> {
    let signals = live::StopSignals::install()?;
    let host = Host::detect();
    let frame = frame::read(Path::new("/"))
        .context("reading the static frame (sysfs memory blocks, /proc/zoneinfo)")?;
    let tracer = loader::load(&host, opts);
    if tracer.attached() == 0 {
        bail!(
            "no probe could attach on this kernel ({}), so there is nothing to trace:\n{}\n\
             `mhpscope probes` explains each probe",
            host.kernel_release,
            failure_lines(&tracer.probes)
        );
    }
    for p in tracer.probes.iter().filter(|p| !p.attached) {
        eprintln!(
            "mhpscope: probe {} not attached: {}",
            p.name,
            p.reason.as_deref().unwrap_or("?")
        );
    }
    let layout = Layout {
        zone_names: tracer.facts.zone_names.clone(),
        page_size: frame.page_size,
        struct_page_size: tracer.facts.struct_page_size,
        block_size_bytes: frame.block_size_bytes,
    };
    Ok(Session {
        signals,
        host,
        tracer,
        frame,
        layout,
    })
}

/// Nodes the kernel may put memory on (all possible ones: hot-add can bring a node online).
fn node_ids(frame: &Frame) -> Vec<i32> {
    let mut ids: Vec<i32> = frame.nodes.iter().map(|n| n.node).collect();
    ids.extend(frame.blocks.iter().filter_map(|b| b.node));
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        ids.push(0);
    }
    ids
}

fn failure_lines(probes: &[ProbeStatus]) -> String {
    probes
        .iter()
        .map(|p| format!("  {}: {}", p.name, p.reason.as_deref().unwrap_or("attached")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `mhpscope record`: NDJSON to a file or stdout.
pub async fn record(opts: &Options, output: Option<PathBuf>, duration: Option<Duration>) -> Result<()> {
    let Session {
        mut signals,
        host,
        mut tracer,
        frame,
        layout,
    } = start_session(opts)?;
    let out: Box<dyn Write> = match &output {
        Some(p) if p.as_os_str() != "-" => {
            Box::new(File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        _ => Box::new(io::stdout().lock()),
    };
    let name = output
        .as_ref()
        .map_or("stdout".into(), |p| p.display().to_string());
    let mut writer = recording::Writer::new(out);
    let nodes = node_ids(&frame);
    let header = Header {
        format_version: recording::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        host,
        clock: live::clocks(),
        layout,
        probes: tracer.probes.clone(),
        frame,
    };
    writer
        .write(&Line::Header(Box::new(header)))
        .context("writing the header")?;
    writer.flush().with_context(|| format!("writing {name}"))?;
    eprintln!("mhpscope: recording to {name}; Ctrl-C to stop");

    let started = Instant::now();
    let writer = std::cell::RefCell::new(writer);
    let (reason, counts) = live::run(
        &mut tracer,
        &nodes,
        &mut signals,
        duration,
        |ev| Ok(writer.borrow_mut().write(&Line::Event(ev))?),
        || Ok(writer.borrow_mut().flush()?),
    )
    .await?;
    let summary = Summary {
        events: counts.events,
        lost_events: tracer.lost_events(),
        undecodable_events: counts.undecodable,
        duration_ns: started.elapsed().as_nanos() as u64,
        end_reason: reason.into(),
        frame: frame::read(Path::new("/")).ok(),
    };
    let mut writer = writer.into_inner();
    writer
        .write(&Line::Summary(Box::new(summary.clone())))
        .context("writing the summary")?;
    writer.flush().with_context(|| format!("writing {name}"))?;
    eprintln!(
        "mhpscope: {} events recorded ({} lost, {} undecodable), stopped by {reason}",
        summary.events, summary.lost_events, summary.undecodable_events
    );
    Ok(())
}

/// `mhpscope report`: live for a while, or from a recording.
pub async fn report(opts: &Options, input: Option<PathBuf>, duration: Duration, json: bool) -> Result<()> {
    let doc = match input {
        Some(path) => replay(&path)?,
        None => live_report(opts, duration).await?,
    };
    let mut stdout = io::stdout().lock();
    let text = if json { doc.to_json() } else { doc.to_text() };
    writeln!(stdout, "{text}").context("writing the report")?;
    Ok(())
}

async fn live_report(opts: &Options, duration: Duration) -> Result<Document> {
    let Session {
        mut signals,
        host,
        mut tracer,
        frame,
        layout,
    } = start_session(opts)?;
    let mut model = Model::new(layout);
    model.set_probes(&tracer.probes);
    model.apply_frame(&frame);
    eprintln!(
        "mhpscope: tracing for {}; Ctrl-C to stop early",
        humantime::format_duration(duration)
    );
    let started = Instant::now();
    let (_, counts) = live::run(
        &mut tracer,
        &node_ids(&frame),
        &mut signals,
        Some(duration),
        |ev| {
            model.ingest(&ev);
            Ok(())
        },
        || Ok(()),
    )
    .await?;
    model.set_lost_events(tracer.lost_events());
    if let Ok(end) = frame::read(Path::new("/")) {
        model.apply_final_frame(&end);
    }
    Ok(Document::build(
        &model,
        Source {
            kernel_release: host.kernel_release,
            probes: tracer.probes.clone(),
            duration_ns: started.elapsed().as_nanos() as u64,
            undecodable_events: counts.undecodable,
            origin: "live".into(),
        },
    ))
}

/// Builds the report of a recording, streaming it through the model.
pub fn replay(path: &Path) -> Result<Document> {
    let mut reader = Reader::open(path)?;
    let header = reader.header()?;
    let mut model = Model::new(header.layout.clone());
    model.set_probes(&header.probes);
    model.apply_frame(&header.frame);
    let mut summary = None;
    while let Some(item) = reader.next_item()? {
        match item {
            Item::Event(ev) => model.ingest(&ev),
            Item::Summary(s) => summary = Some(s),
        }
    }
    let summary = summary.expect("the reader fails on a recording without a summary");
    model.set_lost_events(summary.lost_events);
    if let Some(end) = &summary.frame {
        model.apply_final_frame(end);
    }
    Ok(Document::build(
        &model,
        Source {
            kernel_release: header.host.kernel_release,
            probes: header.probes,
            duration_ns: summary.duration_ns,
            undecodable_events: summary.undecodable_events,
            origin: reader.name().to_string(),
        },
    ))
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
            notes.push(format!("{} {}: {}", a.way, a.function, a.error));
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
            p.method.clone().unwrap_or_else(|| "-".into()),
            notes.join("\n"),
        ]);
    }
    t
}

/// `mhpscope probes`: every probe, attached or not, how, and why not. Exits 0 either way:
/// explaining is its job.
pub async fn probes(opts: &Options, json: bool) -> Result<()> {
    let host = Host::detect();
    let tracer = loader::load(&host, opts);
    let mut stdout = io::stdout().lock();
    if json {
        let doc = serde_json::json!({ "host": host, "probes": tracer.probes });
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
    Ok(())
}
