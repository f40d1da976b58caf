//! `cargo xtask lab`: setup, build, fetch the kernel, build the initramfs, boot qemu, run the
//! scenario, write the artifacts and run `mhpscope report` on the recording.
//!
//! The room: the scenarios and their plans (`scenario`), the ground truth they record
//! (`truth`, `failtruth`), the report as the checks read it (`report`), the checks of one
//! against the other (`checks`), and what top's screen shows (`top_screen`). The scenarios
//! know nothing of the checks.

pub mod checks;
pub mod failtruth;
pub mod report;
pub mod scenario;
pub mod top_screen;
pub mod truth;

use crate::vm::guest::Guest;
use crate::vm::qemu::{Machine, Qemu, QemuConfig};
use crate::vm::qmp::Qmp;
use crate::{build_cmd, setup, util, vm::initramfs, vm::kernel};
use anyhow::{Context, Result};
use clap::Args;
use scenario::{Ctx, Plan, PLANS};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use truth::{GroundTruth, KernelInfo};

#[derive(Args, Debug, Clone)]
pub struct LabArgs {
    /// Kernel to boot (see the table in xtask/src/vm/kernel.rs); `cargo xtask test` defaults to all of them.
    #[arg(long)]
    pub kernel: Option<String>,
    /// Scenario to run (hotplug, hotplug-kprobe, offnode, devdax, failures, reporting); default: all of them, one boot each.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Keep the staged initramfs tree (target/lab/<kernel>/work/initramfs) for inspection.
    #[arg(long)]
    pub keep: bool,
    /// Development: run the scenario without mhpscope (no build, record, probes or report).
    #[arg(long)]
    pub no_mhpscope: bool,
    /// Watch the scenario in `mhpscope top` on this terminal, fed live by the guest's
    /// recording (one scenario: --scenario, default hotplug).
    #[arg(long, conflicts_with = "no_mhpscope")]
    pub top: bool,
    /// Internal (`--top`): stream the guest's recording into this host file as it grows.
    #[arg(long, hide = true)]
    pub stream: Option<PathBuf>,
}

pub fn out_dir(kernel: &str, scenario: &str) -> PathBuf {
    util::repo_root()
        .join("target")
        .join("lab")
        .join(kernel)
        .join(scenario)
}

/// The scenarios `--scenario` selects.
pub fn plans(args: &LabArgs) -> Result<Vec<&'static Plan>> {
    match &args.scenario {
        Some(name) => Ok(vec![scenario::plan(name)?]),
        None => Ok(PLANS.iter().collect()),
    }
}

/// Artifacts of previous runs that must not survive into this one.
const ARTIFACTS: &[&str] = &[
    "recording.ndjson",
    "ground-truth.json",
    "console.log",
    "qemu.log",
    "probes.txt",
    "report.txt",
    "report.json",
    "dmesg.txt",
    "ftrace.txt",
];

/// Runs the selected scenarios on one kernel; the ground truth of each, in order. A scenario
/// that fails is reported in its ground truth (`error`) and the others still run.
pub fn run(args: &LabArgs, kernel_name: &str) -> Result<Vec<(&'static Plan, GroundTruth)>> {
    let t0 = Instant::now();
    let spec = kernel::lookup(kernel_name)?;
    setup::run()?;
    let mhpscope = if args.no_mhpscope {
        None
    } else {
        Some(build_cmd::run(true)?)
    };
    let t = Instant::now();
    let k = kernel::fetch(spec)?;
    println!(
        "lab: kernel {} {} ({})",
        k.package,
        k.version,
        util::secs(t.elapsed())
    );

    let t = Instant::now();
    let work = util::repo_root()
        .join("target")
        .join("lab")
        .join(spec.name)
        .join("work");
    let initrd = initramfs::build(&work, mhpscope.as_deref(), Some(&k.root), args.keep)?;
    println!(
        "lab: initramfs {} ({})",
        initrd.display(),
        util::secs(t.elapsed())
    );
    let mut results = Vec::new();
    for plan in plans(args)? {
        println!("lab: === {} on {}: {}", plan.name, spec.name, plan.about);
        let truth = run_plan(
            plan,
            spec.name,
            &k,
            &initrd,
            mhpscope.as_deref(),
            args.stream.as_deref(),
        )?;
        results.push((plan, truth));
    }
    println!("lab: {} finished in {}", spec.name, util::secs(t0.elapsed()));
    Ok(results)
}

/// One boot. A scenario that breaks leaves its error in the ground truth (the checks report
/// it); only trouble outside the guest (writing artifacts) is an error here.
fn run_plan(
    plan: &'static Plan,
    kernel_name: &str,
    k: &kernel::Kernel,
    initrd: &Path,
    mhpscope: Option<&Path>,
    stream: Option<&Path>,
) -> Result<GroundTruth> {
    let t0 = Instant::now();
    let out = out_dir(kernel_name, plan.name);
    std::fs::create_dir_all(&out)?;
    for a in ARTIFACTS {
        let _ = std::fs::remove_file(out.join(a));
    }
    let nvdimm_file = out.join("nvdimm.img");
    let machine = Machine {
        memmap_on_memory: plan.memmap_on_memory,
        memoryless_node: plan.memoryless_node,
        nvdimm: plan.nvdimm.then(|| nvdimm_file.clone()),
        stream: stream.map(Path::to_path_buf),
        icount: false,
        balloon: plan.flow == scenario::Flow::Reporting,
    };
    let mut truth = GroundTruth {
        schema_version: 1,
        scenario: plan.name.into(),
        kernel: KernelInfo {
            name: kernel_name.into(),
            package: k.package.clone(),
            version: k.version.clone(),
            cmdline: machine.cmdline(),
            release: None,
        },
        ..Default::default()
    };

    let fresh = truth.clone();
    let attempt = |truth: &mut GroundTruth| {
        let _ = std::fs::remove_file(&nvdimm_file);
        boot_and_run(
            &out,
            &k.vmlinuz,
            initrd,
            &machine,
            plan,
            mhpscope.is_some(),
            truth,
        )
    };
    let mut result = attempt(&mut truth);
    // Under TCG a guest has (rarely, on 6.12 with qemu 10) left its control channel silent
    // while the recorder detached its probes. That says nothing about mhpscope's output: boot
    // it once more, and say so. Any other failure, and every check, counts as it is.
    if let Err(e) = &result {
        if e.chain().any(|c| c.is::<crate::vm::guest::Unanswered>()) {
            let why = format!("{e:#}");
            eprintln!(
                "lab: {}: the guest stopped answering ({why}); running the scenario again, once",
                plan.name
            );
            truth = fresh;
            truth.retried_after = Some(why);
            result = attempt(&mut truth);
        }
    }
    // The 1 GiB backing file is no artifact anyone needs.
    let _ = std::fs::remove_file(&nvdimm_file);

    if let Err(e) = &result {
        truth.error = Some(format!("{e:#}"));
    }
    let gt = out.join("ground-truth.json");
    std::fs::write(&gt, serde_json::to_string_pretty(&truth)?).context("writing ground-truth.json")?;
    if let Err(e) = result {
        let console = out.join("console.log");
        eprintln!("lab: {} FAILED: {e:#}", plan.name);
        eprintln!(
            "lab: last lines of {}:\n{}",
            console.display(),
            util::tail(&console, 40)
        );
        return Ok(truth);
    }
    println!(
        "lab: scenario done ({}); ground truth in {}",
        util::secs(t0.elapsed()),
        gt.display()
    );

    if let Some(bin) = mhpscope {
        if let Err(e) = report(bin, &out, plan.report_flags) {
            truth.error = Some(format!("{e:#}"));
        }
    }
    println!(
        "lab: {} finished in {}; artifacts in {}",
        plan.name,
        util::secs(t0.elapsed()),
        out.display()
    );
    Ok(truth)
}

fn boot_and_run(
    out: &Path,
    vmlinuz: &Path,
    initrd: &Path,
    machine: &Machine,
    plan: &'static Plan,
    with_mhpscope: bool,
    truth: &mut GroundTruth,
) -> Result<()> {
    // Short socket directory: unix socket paths must stay under 108 bytes.
    let sock_dir = std::env::temp_dir().join(format!("mhpscope-lab-{}", std::process::id()));
    let cfg = QemuConfig {
        kernel: vmlinuz,
        initrd,
        console_log: &out.join("console.log"),
        qemu_log: &out.join("qemu.log"),
        sock_dir: &sock_dir,
        machine,
    };
    let epoch = Instant::now();
    let mut qemu = Qemu::spawn(&cfg)?;
    truth.qemu_args = qemu.args.clone();
    let r = (|| -> Result<()> {
        let t = Instant::now();
        println!(
            "lab: booting qemu (TCG), console in {}",
            cfg.console_log.display()
        );
        let ctl = qemu.ctl_sock.clone();
        let guest = Guest::connect(&ctl, &mut qemu, Duration::from_secs(240)).context("booting the guest")?;
        let qmp_sock = qemu.qmp_sock.clone();
        let qmp = Qmp::connect(&qmp_sock, epoch)?;
        println!("lab: guest up in {}", util::secs(t.elapsed()));
        let mut ctx = Ctx::new(&mut qemu, guest, qmp, truth, epoch, with_mhpscope, out, plan);
        ctx.stream = machine.stream.is_some();
        let r = scenario::run(&mut ctx);
        let Ctx { qmp, .. } = ctx;
        truth.qmp = qmp.log.clone();
        truth.qmp_events = qmp.events.clone();
        r
    })();
    qemu.kill();
    let _ = std::fs::remove_dir_all(&sock_dir);
    r
}

/// Runs `mhpscope report` (with the scenario's `flags`) on the host: text to the console and
/// report.txt, JSON to report.json.
fn report(bin: &Path, out: &Path, flags: &[&str]) -> Result<()> {
    let rec = out.join("recording.ndjson");
    let text = util::output(
        Command::new(bin)
            .args(flags)
            .arg("report")
            .arg("--input")
            .arg(&rec),
    )
    .context("mhpscope report")?;
    println!("{text}");
    std::fs::write(out.join("report.txt"), &text)?;
    let json = util::output(
        Command::new(bin)
            .args(flags)
            .arg("report")
            .arg("--input")
            .arg(&rec)
            .arg("--json"),
    )
    .context("mhpscope report --json")?;
    std::fs::write(out.join("report.json"), &json)?;
    println!(
        "lab: report in {} and report.json",
        out.join("report.txt").display()
    );
    Ok(())
}

/// `lab --top`: the scenario runs in a child lab (its output to lab.log) while `mhpscope top`
/// holds this terminal, following the recording the guest streams out as it grows.
pub fn run_with_top(args: &LabArgs, kernel_name: &str) -> Result<()> {
    use std::io::IsTerminal;
    anyhow::ensure!(
        std::io::stdout().is_terminal() && std::io::stdin().is_terminal(),
        "--top shows a TUI: run it on a terminal"
    );
    let plan = scenario::plan(args.scenario.as_deref().unwrap_or("hotplug"))?;
    kernel::lookup(kernel_name)?;
    setup::run()?;
    let bin = build_cmd::run(true)?;
    let out = out_dir(kernel_name, plan.name);
    std::fs::create_dir_all(&out)?;
    let stream = out.join("stream.ndjson");
    // Empty before top opens it: qemu appends what the guest sends.
    std::fs::write(&stream, "").with_context(|| format!("creating {}", stream.display()))?;
    let log_path = out.join("lab.log");
    let log = std::fs::File::create(&log_path)?;
    let mut lab = Command::new(std::env::current_exe()?)
        .args([
            "lab",
            "--kernel",
            kernel_name,
            "--scenario",
            plan.name,
            "--stream",
        ])
        .arg(&stream)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the lab")?;
    println!(
        "lab: {} on {} runs in the background (log: {}); top shows it once the guest's recorder starts",
        plan.name,
        kernel_name,
        log_path.display()
    );
    let top = Command::new(&bin)
        .args(["top", "--follow", "--input"])
        .arg(&stream)
        .status()
        .context("running mhpscope top");
    if lab.try_wait()?.is_none() {
        println!(
            "lab: waiting for the scenario to finish (log: {})",
            log_path.display()
        );
    }
    let status = lab.wait()?;
    println!("{}", util::tail(&log_path, 25));
    anyhow::ensure!(top?.success(), "mhpscope top failed");
    anyhow::ensure!(
        status.success(),
        "the lab failed ({status}); log: {}",
        log_path.display()
    );
    Ok(())
}
