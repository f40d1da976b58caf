//! The scenarios run against a booted guest. Each records under mhpscope, hot-adds DIMMs over
//! QMP (or creates devdax namespaces on an nvdimm), onlines, offlines and unplugs them, and stops
//! the recorder. Every step is timed and every observation goes into the ground truth.

use crate::lab::truth::{
    self, Compaction, DaxRun, Dimm, GroundTruth, MhpscopeRun, Snapshot, StateWrite, Step, TopScreen,
};
use crate::vm::guest::Guest;
use crate::vm::initramfs::{LOAD_BALLOON, LOAD_NVDIMM, MHPSCOPE, SNAPSHOT_CMD};
use crate::vm::qemu::Qemu;
use crate::vm::qmp::Qmp;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

pub mod failures;
pub mod reporting;

const MEM: &str = "/sys/devices/system/memory";
/// The guest's end of `Machine::stream`.
const STREAM_TTY: &str = "/dev/ttyS2";
/// Functions whose traceability decides which way mhpscope attaches.
pub const TRACEABLE: &[&str] = &["memmap_init_range", "__add_pages", "memmap_init_zone_device"];

#[derive(Debug, Clone, Copy)]
pub struct DimmPlan {
    pub id: &'static str,
    pub memdev: &'static str,
    pub size: u64,
    pub node: i64,
}

/// What a scenario does with its DIMMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Hot-add, online movable, (compaction,) offline, unplug; or devdax namespaces.
    Hotplug,
    /// Provoke every online/offline failure the lab can, onlines into chosen zones, a hot-add
    /// left offline and one auto-onlined ([`failures`]).
    Failures,
    /// Free page reporting to a virtio balloon: a DIMM onlined, memory touched and freed, each
    /// reporting cycle and report counted by the guest's ftrace, the host's RSS ([`reporting`]).
    Reporting,
}

/// One lab scenario: one boot of the guest.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub name: &'static str,
    pub flow: Flow,
    /// Extra flags of `mhpscope report` for this scenario's recording.
    pub report_flags: &'static [&'static str],
    pub about: &'static str,
    pub memmap_on_memory: bool,
    pub memoryless_node: bool,
    pub nvdimm: bool,
    pub dimms: &'static [DimmPlan],
    /// Hot-add all DIMMs at the same moment and online all their blocks in one go (the kernel
    /// serialises onlining under the device hotplug lock; concurrent writers only retry).
    pub together: bool,
    /// Run compaction while ZONE_MOVABLE is onlined (and not contiguous).
    pub compaction: bool,
    /// Also run `mhpscope top` live in the guest (under tmux) and capture its screen.
    pub top: bool,
    /// Attach methods the recorder is told to avoid (`--avoid`, snake_case as the report's
    /// JSON names them): `raw_tracepoint` makes page allocations come from the classic
    /// tracepoint, `fentry` makes every fentry/fexit probe fall back to its kprobe pair; the
    /// checks then expect those methods and hold their data against the same ground truth.
    pub avoid: &'static [&'static str],
}

impl Plan {
    /// Whether the recorder runs with `--avoid method`.
    pub fn avoids(&self, method: &str) -> bool {
        self.avoid.contains(&method)
    }
}

pub const PLANS: &[Plan] = &[
    HOTPLUG,
    // The same scenario with every fentry/fexit probe on its kprobe/kretprobe pair instead (the
    // kprobe half of probe-ebpf), checked against the same ground truth. No top in the guest:
    // one boot less of what `hotplug` already shows.
    Plan {
        name: "hotplug-kprobe",
        about: "hotplug recorded with --avoid fentry: every fentry/fexit probe attached as a kprobe pair",
        top: false,
        avoid: &["fentry"],
        ..HOTPLUG
    },
    Plan {
        name: "offnode",
        flow: Flow::Hotplug,
        report_flags: &[],
        about: "memmap_on_memory=0: DIMMs on node 1 and on memoryless node 2 at the same moment, \
                online all blocks back to back, offline, unplug",
        memmap_on_memory: false,
        memoryless_node: true,
        nvdimm: false,
        dimms: &[
            DimmPlan {
                id: "d1",
                memdev: "hp1",
                size: 256 << 20,
                node: 1,
            },
            DimmPlan {
                id: "d2",
                memdev: "hp2",
                size: 256 << 20,
                node: 2,
            },
        ],
        together: true,
        compaction: false,
        top: false,
        // Every memmap here comes from existing memory, on two nodes: the most allocations
        // for the fallback to report.
        avoid: &["raw_tracepoint"],
    },
    Plan {
        name: "devdax",
        flow: Flow::Hotplug,
        report_flags: &[],
        about: "a 1 GiB nvdimm on node 1: ndctl devdax namespace with --map=dev, then --map=mem",
        memmap_on_memory: true,
        memoryless_node: false,
        nvdimm: true,
        dimms: &[],
        together: false,
        compaction: false,
        top: false,
        avoid: &[],
    },
    FAILURES,
    REPORTING,
];

/// The reporting scenario: what it does is in [`reporting`].
const REPORTING: Plan = Plan {
    name: "reporting",
    flow: Flow::Reporting,
    report_flags: &[],
    about: "virtio-balloon free-page-reporting=on, memmap_on_memory=0: a 256 MiB DIMM (preallocated on the \
            host) onlined movable on node 1, then a 256 MiB buffer touched and freed three times; ftrace \
            counts the cycles and reports, the host watches qemu's RSS",
    memmap_on_memory: false,
    memoryless_node: false,
    nvdimm: false,
    dimms: &[DimmPlan {
        id: "d1",
        memdev: "hp1",
        size: 256 << 20,
        node: 1,
    }],
    together: false,
    compaction: false,
    top: false,
    avoid: &[],
};

/// The hotplug scenario (also the base of `hotplug-kprobe`).
const HOTPLUG: Plan = Plan {
    name: "hotplug",
    flow: Flow::Hotplug,
    report_flags: &[],
    about: "memmap_on_memory=1: a one-block and a two-block DIMM on node 1, online movable one by one, \
            compaction, offline, unplug",
    memmap_on_memory: true,
    memoryless_node: false,
    nvdimm: false,
    // On 6.1 the one-block DIMM gets a self-hosted memmap and the two-block one does not;
    // 6.12 and later self-host every block.
    dimms: &[
        DimmPlan {
            id: "d1",
            memdev: "hp1",
            size: 128 << 20,
            node: 1,
        },
        DimmPlan {
            id: "d2",
            memdev: "hp2",
            size: 256 << 20,
            node: 1,
        },
    ],
    together: false,
    compaction: true,
    top: true,
    avoid: &[],
};

/// The failures scenario: what it does is in [`failures`].
const FAILURES: Plan = Plan {
    name: "failures",
    flow: Flow::Failures,
    // Readiness: the DIMM left offline must become a finding within the scenario's time.
    // Headroom: a share that the 1 GiB DIMM's memmap exceeds on node 1 and the others do not.
    report_flags: &["--online-grace", "5s", "--headroom-warn", failures::HEADROOM_WARN],
    about: "memmap_on_memory=0, dynamic debug on mm/memory_hotplug.c: offline a boot block spanning two \
            zones and one with holes; a DIMM onlined online_kernel and filled with slab, offlined (EBUSY); \
            notifier error injection on offline and online; online_movable, online_kernel and auto-movable \
            onlines; a signal during an offline's migration; a DIMM never onlined; one auto-onlined",
    memmap_on_memory: false,
    memoryless_node: false,
    nvdimm: false,
    dimms: &[
        DimmPlan {
            id: "d1",
            memdev: "hp1",
            size: 128 << 20,
            node: 1,
        },
        DimmPlan {
            id: "d2",
            memdev: "hp2",
            size: 256 << 20,
            node: 1,
        },
        DimmPlan {
            id: "d3",
            memdev: "hp3",
            size: 1 << 30,
            node: 1,
        },
        DimmPlan {
            id: "d4",
            memdev: "hp4",
            size: 128 << 20,
            node: 0,
        },
    ],
    together: false,
    compaction: false,
    top: false,
    avoid: &[],
};

pub fn plan(name: &str) -> Result<&'static Plan> {
    PLANS.iter().find(|p| p.name == name).with_context(|| {
        let names: Vec<&str> = PLANS.iter().map(|p| p.name).collect();
        format!("unknown scenario {name:?}; known: {}", names.join(", "))
    })
}

pub struct Ctx<'a> {
    pub qemu: &'a mut Qemu,
    pub guest: Guest,
    pub qmp: Qmp,
    pub truth: &'a mut GroundTruth,
    pub epoch: Instant,
    pub with_mhpscope: bool,
    pub out_dir: &'a Path,
    pub plan: &'static Plan,
    /// Stream the recording over the guest's ttyS2 as it grows (`lab --top`).
    pub stream: bool,
    step_no: usize,
}

impl<'a> Ctx<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        qemu: &'a mut Qemu,
        guest: Guest,
        qmp: Qmp,
        truth: &'a mut GroundTruth,
        epoch: Instant,
        with_mhpscope: bool,
        out_dir: &'a Path,
        plan: &'static Plan,
    ) -> Self {
        Ctx {
            qemu,
            guest,
            qmp,
            truth,
            epoch,
            with_mhpscope,
            out_dir,
            plan,
            stream: false,
            step_no: 0,
        }
    }

    fn sh(&mut self, cmd: &str, timeout_s: u64) -> Result<String> {
        self.guest.run_ok(self.qemu, cmd, Duration::from_secs(timeout_s))
    }

    fn sh_rc(&mut self, cmd: &str, timeout_s: u64) -> Result<crate::vm::guest::Output> {
        self.guest.run(self.qemu, cmd, Duration::from_secs(timeout_s))
    }

    /// Runs and times one numbered step, recording it in the ground truth.
    fn step<T>(&mut self, name: &str, desc: &str, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.step_no += 1;
        println!("lab: [{}] {name}: {desc}", self.step_no);
        let t = Instant::now();
        let start_ms = self.epoch.elapsed().as_secs_f64() * 1e3;
        let r = f(self);
        let duration = t.elapsed();
        self.truth.steps.push(Step {
            name: name.into(),
            description: desc.into(),
            start_ms,
            duration_ms: duration.as_secs_f64() * 1e3,
            ok: r.is_ok(),
            error: r.as_ref().err().map(|e| format!("{e:#}")),
        });
        match &r {
            Ok(_) => println!("lab:        {name} done in {:.1} s", duration.as_secs_f64()),
            Err(_) => println!("lab:        {name} FAILED after {:.1} s", duration.as_secs_f64()),
        }
        r.with_context(|| format!("lab step {name}"))
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.step_no += 1;
        println!("lab: [{}] {name}: skipped ({why})", self.step_no);
    }

    fn snapshot(&mut self, name: &str) -> Result<()> {
        let text = self.sh(SNAPSHOT_CMD, 120)?;
        let raw = truth::parse_items(&text).with_context(|| format!("snapshot {name}"))?;
        let parsed = truth::parse_snapshot(&raw).with_context(|| format!("snapshot {name}"))?;
        println!(
            "lab:        snapshot {name}: {} blocks, node1 Movable {}",
            parsed.blocks.len(),
            parsed
                .zone(1, "Movable")
                .map(|z| format!(
                    "spanned {} present {} managed {}",
                    z.spanned, z.present, z.managed
                ))
                .unwrap_or_else(|| "absent".into())
        );
        self.truth.snapshots.push(Snapshot {
            name: name.into(),
            raw,
            parsed,
        });
        Ok(())
    }

    fn block_ids(&mut self) -> Result<Vec<u64>> {
        self.guest.block_ids(self.qemu)
    }

    /// Polls the guest's block list until `done` holds.
    fn wait_blocks(&mut self, what: &str, timeout_s: u64, done: impl Fn(&[u64]) -> bool) -> Result<Vec<u64>> {
        let deadline = Instant::now() + Duration::from_secs(timeout_s);
        loop {
            let ids = self.block_ids()?;
            if done(&ids) {
                return Ok(ids);
            }
            if Instant::now() >= deadline {
                bail!("{what}: not seen in sysfs within {timeout_s} s (blocks now: {ids:?})");
            }
            self.qmp.drain();
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn block_size(&self) -> Result<u64> {
        self.truth
            .snapshots
            .iter()
            .find_map(|s| s.parsed.block_size_bytes)
            .context("block size unknown (no snapshot)")
    }

    /// QMP object-add + device_add, recorded in the ground truth.
    fn plug(&mut self, d: &DimmPlan) -> Result<()> {
        self.plug_backed(d, false)
    }

    /// `plug`, with the backing memory preallocated on the host when asked (every page
    /// resident, so what the guest hands back shows in qemu's RSS).
    pub(super) fn plug_backed(&mut self, d: &DimmPlan, prealloc: bool) -> Result<()> {
        self.qmp.execute(
            "object-add",
            Some(
                json!({"qom-type": "memory-backend-ram", "id": d.memdev, "size": d.size, "prealloc": prealloc}),
            ),
        )?;
        self.qmp.execute(
            "device_add",
            Some(json!({"driver": "pc-dimm", "id": d.id, "memdev": d.memdev, "node": d.node})),
        )?;
        self.truth.dimms.push(Dimm {
            id: d.id.into(),
            memdev: d.memdev.into(),
            size: d.size,
            node: d.node,
            added: true,
            addr: None,
            slot: None,
            blocks: Vec::new(),
            deleted: false,
        });
        Ok(())
    }

    /// All DIMMs of the plan at the same moment; their blocks follow from QMP's addresses.
    fn add_together(&mut self, dimms: &[DimmPlan]) -> Result<()> {
        let before = self.block_ids()?;
        let bs = self.block_size()?;
        for d in dimms {
            self.plug(d)?;
        }
        self.query_memory_devices()?;
        let expect: usize = dimms.iter().map(|d| (d.size / bs) as usize).sum();
        self.wait_blocks(&format!("{expect} new blocks"), 120, |ids| {
            ids.iter().filter(|i| !before.contains(i)).count() >= expect
        })?;
        self.snapshot("after-add")?;
        let names: Vec<String> = dimms.iter().map(|d| format!("after-add-{}", d.id)).collect();
        let snap = self.truth.snapshots.last().cloned().context("snapshot")?;
        for (d, name) in self.truth.dimms.iter_mut().zip(names) {
            let addr = d.addr.context("query-memory-devices gave no address")?;
            d.blocks = (addr / bs..(addr + d.size) / bs).collect();
            println!("lab:        {}: blocks {:?}", d.id, d.blocks);
            self.truth.snapshots.push(Snapshot { name, ..snap.clone() });
        }
        Ok(())
    }

    fn add_dimm(&mut self, d: &DimmPlan, snap: &str) -> Result<()> {
        let before = self.block_ids()?;
        let expect = (d.size / self.block_size()?) as usize;
        let id = d.id;
        self.plug(d)?;
        self.query_memory_devices()?;
        self.wait_blocks(&format!("{expect} new block(s) of {id}"), 120, |ids| {
            ids.iter().filter(|i| !before.contains(i)).count() >= expect
        })?;
        // Which blocks belong to this DIMM comes from the snapshots, not from the poll.
        let prev = self
            .truth
            .snapshots
            .last()
            .context("no snapshot before add")?
            .parsed
            .block_ids();
        self.snapshot(snap)?;
        let now = self.truth.snapshots.last().unwrap().parsed.block_ids();
        let new: Vec<u64> = now.into_iter().filter(|i| !prev.contains(i)).collect();
        println!("lab:        {id}: blocks {new:?}");
        self.truth.dimms.last_mut().unwrap().blocks = new;
        Ok(())
    }

    fn query_memory_devices(&mut self) -> Result<()> {
        let devs = self.qmp.execute("query-memory-devices", None)?;
        for d in devs.as_array().into_iter().flatten() {
            let data = &d["data"];
            let Some(id) = data["id"].as_str() else {
                continue;
            };
            if let Some(dimm) = self.truth.dimms.iter_mut().find(|x| x.id == id) {
                dimm.addr = data["addr"].as_u64();
                dimm.slot = data["slot"].as_i64();
            }
        }
        Ok(())
    }

    fn write_states(&mut self, blocks: &[u64], value: &str) -> Result<()> {
        for &b in blocks {
            let o = self.sh_rc(&format!("echo {value} > {MEM}/memory{b}/state"), 300)?;
            let w = StateWrite {
                block: b,
                value: value.into(),
                rc: o.rc,
                output: o.text.trim().into(),
            };
            let failed = w.rc != 0;
            if value == "offline" {
                self.truth.offline_writes.push(w);
            } else {
                self.truth.online_writes.push(w);
            }
            if failed {
                bail!(
                    "echo {value} > memory{b}/state failed ({}): {}",
                    o.rc,
                    o.text.trim()
                );
            }
        }
        Ok(())
    }
}

pub fn run(c: &mut Ctx) -> Result<()> {
    let plan = c.plan;
    match plan.flow {
        Flow::Failures => return failures::run(c),
        Flow::Reporting => return reporting::run(c),
        Flow::Hotplug => {}
    }
    c.step(
        "prepare",
        "auto_online_blocks=offline, uname -r, memmap_on_memory, nodes, boot log, load virtio_balloon, snapshot boot",
        prepare,
    )?;

    if plan.nvdimm {
        c.step(
            "load-nvdimm",
            "insmod the nvdimm/dax modules, wait for namespace0.0",
            |c| c.sh(LOAD_NVDIMM, 120).map(|_| ()),
        )?;
    }

    if c.with_mhpscope {
        c.step(
            "start-recorder",
            "mhpscope record -o /tmp/rec.ndjson &, wait for its header; mhpscope probes",
            start_recorder,
        )?;
    } else {
        c.skip("start-recorder", "--no-mhpscope");
    }
    let top = c.with_mhpscope && plan.top;
    if top {
        c.step(
            "start-top",
            &format!("tmux new-session -d -x {TOP_COLS} -y {TOP_ROWS} 'mhpscope top'; wait for its first screen"),
            |c| {
                c.sh(
                    &format!("tmux -u new-session -d -s top -x {TOP_COLS} -y {TOP_ROWS} '{MHPSCOPE} {WITH_ALL} top 2>/tmp/top.err; echo mhpscope top exited $?; sleep 3600'"),
                    30,
                )?;
                c.capture_top("start-top", |screen| screen.contains("Probes"))
            },
        )?;
    }

    c.step("before-add", "snapshot before-add", |c| c.snapshot("before-add"))?;

    if plan.together && !plan.dimms.is_empty() {
        let ids: Vec<String> = plan
            .dimms
            .iter()
            .map(|d| format!("{} on node {}", d.id, d.node))
            .collect();
        c.step(
            "add-together",
            &format!(
                "QMP device_add {} back to back; wait for their blocks; snapshot after-add",
                ids.join(", ")
            ),
            |c| c.add_together(plan.dimms),
        )?;
    } else {
        for d in plan.dimms {
            let snap = format!("after-add-{}", d.id);
            c.step(
                &format!("add-{}", d.id),
                &format!(
                    "QMP object-add {} {} MiB, device_add pc-dimm {} node {}; wait for its blocks; snapshot {snap}",
                    d.memdev,
                    d.size >> 20,
                    d.id,
                    d.node
                ),
                |c| c.add_dimm(d, &snap),
            )?;
        }
    }

    let new_blocks = c.truth.hot_added_blocks();
    if !new_blocks.is_empty() {
        if plan.together {
            c.step(
                "online",
                &format!("echo online_movable > memoryN/state for {new_blocks:?} back to back; snapshot after-online"),
                |c| {
                    c.write_states(&new_blocks, "online_movable")?;
                    c.snapshot("after-online")
                },
            )?;
        } else {
            c.step(
                "online",
                &format!(
                    "echo online_movable > memoryN/state for {new_blocks:?}, a snapshot after each; snapshot after-online"
                ),
                |c| {
                    for &b in &new_blocks {
                        c.write_states(&[b], "online_movable")?;
                        c.snapshot(&format!("after-online-{b}"))?;
                    }
                    c.snapshot("after-online")
                },
            )?;
        }
    }

    if top && !new_blocks.is_empty() {
        c.step(
            "capture-top",
            "tmux capture-pane until top shows the onlined blocks; tmux kill-server",
            |c| {
                let n = new_blocks.len();
                let r = c.capture_top("online", |screen| top_shows_onlines(screen, n));
                c.sh("tmux kill-server; cat /tmp/top.err", 30)?;
                r
            },
        )?;
    }

    if plan.compaction {
        c.step(
            "compact",
            "echo 1 > /proc/sys/vm/compact_memory while ZONE_MOVABLE is online; wait 2.5 s for a counter sample",
            compact,
        )?;
    }

    if !new_blocks.is_empty() {
        let mut rev = new_blocks.clone();
        rev.reverse();
        c.step(
            "offline",
            &format!("echo offline > memoryN/state for {rev:?}; snapshot after-offline"),
            |c| {
                c.write_states(&rev, "offline")?;
                c.snapshot("after-offline")
            },
        )?;

        c.step(
            "remove",
            "QMP device_del of every DIMM; wait for DEVICE_DELETED and for the blocks to vanish; snapshot after-remove",
            |c| {
                for d in plan.dimms {
                    c.qmp.execute("device_del", Some(json!({"id": d.id})))?;
                }
                for d in plan.dimms {
                    let id = d.id;
                    c.qmp
                        .wait_event(&format!("DEVICE_DELETED {id}"), Duration::from_secs(120), |e| {
                            e["event"] == "DEVICE_DELETED" && e["data"]["device"] == id
                        })?;
                    if let Some(d) = c.truth.dimms.iter_mut().find(|d| d.id == id) {
                        d.deleted = true;
                    }
                }
                let gone = new_blocks.clone();
                c.wait_blocks("removal of the hot-added blocks", 120, |ids| {
                    !ids.iter().any(|i| gone.contains(i))
                })?;
                c.query_memory_devices()?;
                c.snapshot("after-remove")
            },
        )?;
    }

    if plan.nvdimm {
        for map in ["dev", "mem"] {
            c.step(
                &format!("devdax-{map}"),
                &format!(
                    "ndctl create-namespace -m devdax --map={map}; iomem and zoneinfo; destroy-namespace"
                ),
                |c| devdax(c, map),
            )?;
        }
    }

    stop_recorder_step(c)?;

    c.step(
        "poweroff",
        "save dmesg, poweroff -f, wait for qemu to exit",
        |c| {
            save_dmesg(c)?;
            poweroff(c)
        },
    )?;
    c.qmp.drain();
    Ok(())
}

/// The guest's kernel log into dmesg.txt; returns it.
fn save_dmesg(c: &mut Ctx) -> Result<String> {
    let dmesg = c.sh("dmesg", 60)?;
    std::fs::write(c.out_dir.join("dmesg.txt"), &dmesg)?;
    Ok(dmesg)
}

fn poweroff(c: &mut Ctx) -> Result<()> {
    c.guest.send_only("sync; poweroff -f")?;
    match c.qemu.wait_exit(Duration::from_secs(60))? {
        Some(st) if st.success() => Ok(()),
        Some(st) => bail!("qemu exited with {st} after poweroff"),
        None => bail!("qemu did not exit within 60 s of poweroff"),
    }
}

/// Common start of every scenario.
fn prepare(c: &mut Ctx) -> Result<()> {
    // 6.1 already boots with "offline"; newer kernels default to "online" (ZONE_NORMAL).
    c.sh(&format!("echo offline > {MEM}/auto_online_blocks"), 30)?;
    c.truth.kernel.release = Some(c.sh("uname -r", 30)?.trim().to_string());
    c.truth.memmap_on_memory = Some(
        c.sh("cat /sys/module/memory_hotplug/parameters/memmap_on_memory", 30)?
            .trim()
            .to_string(),
    );
    c.truth.nodes_with_memory = truth::parse_node_list(&c.sh("cat /sys/devices/system/node/has_memory", 30)?);
    c.truth.fallback_order = truth::parse_fallback_orders(&c.sh("dmesg", 60)?);
    for f in TRACEABLE {
        let n = c.sh(
            &format!("grep -c -x '{f}' /sys/kernel/tracing/available_filter_functions || true"),
            60,
        )?;
        c.truth.traceable.insert(f.to_string(), n.trim() != "0");
    }
    // Before the recorder: its free page reporting callback probe is a kprobe on a function of
    // this module (a driver without a balloon device is harmless).
    let loaded = c.sh(LOAD_BALLOON, 60).context("loading virtio_balloon")?;
    c.truth.balloon_modules = Some(loaded.trim().to_string());
    c.snapshot("boot")
}

fn compact(c: &mut Ctx) -> Result<()> {
    let start_ms = c.epoch.elapsed().as_secs_f64() * 1e3;
    let before = truth::parse_vmstat(&c.sh("cat /proc/vmstat", 30)?);
    c.sh("echo 1 > /proc/sys/vm/compact_memory", 300)?;
    let after = truth::parse_vmstat(&c.sh("cat /proc/vmstat", 30)?);
    // mhpscope samples its slow-path counters once a second.
    std::thread::sleep(Duration::from_millis(2500));
    println!(
        "lab:        compaction scanned {} pages",
        truth::compaction_scanned(&after).saturating_sub(truth::compaction_scanned(&before))
    );
    c.truth.compactions.push(Compaction {
        start_ms,
        vmstat_before: before,
        vmstat_after: after,
    });
    Ok(())
}

fn devdax(c: &mut Ctx, map: &str) -> Result<()> {
    let out = c.sh_rc(
        &format!("ndctl create-namespace -f -e namespace0.0 -m devdax --map={map}"),
        300,
    )?;
    let mut run = DaxRun {
        map: map.into(),
        ndctl: out.text.trim().to_string(),
        rc: out.rc,
        pmem: None,
        device_zone: None,
        destroyed: false,
    };
    if out.rc == 0 {
        run.pmem = truth::iomem_range(&c.sh("cat /proc/iomem", 30)?, "Persistent Memory");
        let zones = truth::parse_zoneinfo(&c.sh("cat /proc/zoneinfo", 30)?)?;
        run.device_zone = zones
            .iter()
            .find(|z| z.node == 1 && z.zone == "Device")
            .map(|z| (z.start_pfn, z.spanned));
        run.destroyed = c.sh_rc("ndctl destroy-namespace -f namespace0.0", 300)?.rc == 0;
    }
    let ok = run.rc == 0 && run.destroyed;
    println!(
        "lab:        --map={map}: ndctl rc {}, pmem {:?}, destroyed {}",
        run.rc,
        run.pmem.map(|(a, b)| format!("{a:#x}-{b:#x}")),
        run.destroyed
    );
    let text = run.ndctl.clone();
    c.truth.devdax.push(run);
    if !ok {
        bail!("ndctl devdax --map={map} failed: {text}");
    }
    Ok(())
}

/// Size of the guest's tmux window for `mhpscope top`.
const TOP_COLS: u32 = 100;
const TOP_ROWS: u32 = 32;

impl Ctx<'_> {
    /// Polls `tmux capture-pane` until `done` holds for the screen (or 30 s pass), records the
    /// last screen in the ground truth and in top-<after>.txt.
    fn capture_top(&mut self, after: &str, done: impl Fn(&str) -> bool) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (screen, ok) = loop {
            let screen = self.sh("tmux capture-pane -p -t top", 30)?;
            if done(&screen) {
                break (screen, true);
            }
            if Instant::now() >= deadline {
                break (screen, false);
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        std::fs::write(self.out_dir.join(format!("top-{after}.txt")), &screen)?;
        self.truth.top_screens.push(TopScreen {
            after: after.into(),
            text: screen.clone(),
        });
        if !ok {
            let err = self.sh("cat /tmp/top.err", 30).unwrap_or_default();
            bail!("mhpscope top did not show what was expected within 30 s; its screen:\n{screen}\nits stderr:\n{err}");
        }
        Ok(())
    }
}

/// The lab watches with every probe, those off by default included (the contiguity-cost
/// counter): the checks compare all of them with the ground truth.
/// Every probe on, and mhpscope's own cost counted (BPF run-time statistics, opt-in on hosts).
const WITH_ALL: &str = "--with pageblock_pfn_to_page --self-cost";

/// The options the recorder (and `probes` beside it) runs with in this scenario.
fn recorder_flags(plan: &Plan) -> String {
    if plan.avoid.is_empty() {
        WITH_ALL.to_string()
    } else {
        format!("{WITH_ALL} --avoid {}", plan.avoid.join(","))
    }
}

fn start_recorder(c: &mut Ctx) -> Result<()> {
    // The subshell leaves /tmp/rec.rc behind when mhpscope exits: a zombie-proof exit signal.
    // ash starts background jobs with SIGINT ignored; `trap - INT` restores the default so the
    // later `kill -INT` reaches mhpscope as it would from a terminal.
    let flags = recorder_flags(c.plan);
    c.sh(
        &format!(
            "rm -f /tmp/rec.*; ( sh -c 'trap - INT; echo $$ > /tmp/rec.pid; exec {MHPSCOPE} {flags} record -o /tmp/rec.ndjson' >/tmp/rec.log 2>&1; echo $? > /tmp/rec.rc ) >/dev/null 2>&1 &"
        ),
        30,
    )?;
    let mut run = MhpscopeRun {
        pid: None,
        header: None,
        exit_code: None,
        stderr: None,
        recording_bytes: None,
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let poll = "if [ -e /tmp/rec.rc ]; then echo EXITED $(cat /tmp/rec.rc); cat /tmp/rec.log; \
                elif [ -s /tmp/rec.ndjson ] && [ $(head -n 1 /tmp/rec.ndjson | wc -l) -ge 1 ]; then echo HEADER $(cat /tmp/rec.pid); head -n 1 /tmp/rec.ndjson; \
                else echo WAIT; fi";
    loop {
        let out = c.sh(poll, 30)?;
        let (first, rest) = out.split_once('\n').unwrap_or((out.as_str(), ""));
        if let Some(code) = first.strip_prefix("EXITED ") {
            run.exit_code = code.trim().parse().ok();
            run.stderr = Some(rest.to_string());
            c.truth.mhpscope = Some(run);
            bail!(
                "mhpscope record exited early ({}):\n{}",
                code.trim(),
                rest.trim_end()
            );
        }
        if let Some(pid) = first.strip_prefix("HEADER ") {
            run.pid = pid.trim().parse().ok();
            run.header = Some(rest.trim_end().to_string());
            break;
        }
        if Instant::now() >= deadline {
            let log = c.sh("cat /tmp/rec.log", 30).unwrap_or_default();
            bail!(
                "mhpscope record wrote no header within 90 s; its output so far:\n{}",
                log.trim_end()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    match run.pid {
        Some(pid) => println!("lab:        recorder (pid {pid}) attached"),
        None => println!("lab:        recorder attached (pid unknown)"),
    }
    c.truth.mhpscope = Some(run);
    if c.stream {
        // From its first line, as it grows; raw, so the lines arrive unchanged.
        c.sh(
            &format!("stty -F {STREAM_TTY} raw -echo; ( tail -n +1 -f /tmp/rec.ndjson > {STREAM_TTY} & echo $! > /tmp/stream.pid )"),
            30,
        )?;
        println!("lab:        streaming the recording over {STREAM_TTY}");
    }
    let probes = c.sh_rc(&format!("{MHPSCOPE} {} probes", recorder_flags(c.plan)), 180)?;
    std::fs::write(c.out_dir.join("probes.txt"), &probes.text)?;
    if probes.rc != 0 {
        println!("lab:        warning: `mhpscope probes` exited {}", probes.rc);
    }
    Ok(())
}

/// The step that stops the recorder (skipped with --no-mhpscope).
pub(super) fn stop_recorder_step(c: &mut Ctx) -> Result<()> {
    if c.with_mhpscope {
        c.step(
            "stop-recorder",
            "kill -INT mhpscope record, wait for it, fetch /tmp/rec.ndjson",
            stop_recorder,
        )
    } else {
        c.skip("stop-recorder", "--no-mhpscope");
        Ok(())
    }
}

fn stop_recorder(c: &mut Ctx) -> Result<()> {
    // While the recorder still runs: `probes` shows its programs' run-time statistics.
    let probes = c.sh_rc(&format!("{MHPSCOPE} {} probes", recorder_flags(c.plan)), 180)?;
    std::fs::write(c.out_dir.join("probes-end.txt"), &probes.text)?;
    c.truth.probes_at_end = Some(probes.text);
    if c.plan.flow == Flow::Reporting {
        // A reporting cycle runs 2 s after the free that asks for it (PAGE_REPORTING_DELAY):
        // let the one `probes` may have asked for pass while both mhpscope and ftrace watch,
        // then close ftrace's window in the command that stops the recorder.
        std::thread::sleep(Duration::from_secs(4));
        c.sh(
            &format!(
                "echo 0 > {}; kill -INT $(cat /tmp/rec.pid)",
                reporting::TRACING_ON
            ),
            30,
        )?;
    } else {
        c.sh("kill -INT $(cat /tmp/rec.pid)", 30)?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        let out = c.sh("cat /tmp/rec.rc 2>/dev/null || echo RUNNING", 30)?;
        if out.trim() != "RUNNING" {
            break out.trim().parse::<i32>().ok();
        }
        if Instant::now() >= deadline {
            let _ = c.sh("kill -KILL $(cat /tmp/rec.pid)", 30);
            bail!("mhpscope record did not exit within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    if c.stream {
        // busybox tail -f polls once a second: let it pass on the summary line.
        c.sh("sleep 2; kill $(cat /tmp/stream.pid)", 30)?;
    }
    let log = c.sh("cat /tmp/rec.log", 30)?;
    let size: u64 = c
        .sh("wc -c < /tmp/rec.ndjson", 30)?
        .trim()
        .parse()
        .context("recording size")?;
    let t = Instant::now();
    let text = c.sh("cat /tmp/rec.ndjson", 600)?;
    if text.len() as u64 != size {
        bail!("recording transfer: got {} bytes, guest has {size}", text.len());
    }
    std::fs::write(c.out_dir.join("recording.ndjson"), &text)?;
    println!(
        "lab:        recorder exited {}; recording {size} bytes, {} lines, transferred in {:.1} s",
        code.map_or("(status unreadable)".into(), |c| c.to_string()),
        text.lines().count(),
        t.elapsed().as_secs_f64()
    );
    if let Some(run) = c.truth.mhpscope.as_mut() {
        run.exit_code = code;
        run.stderr = Some(log.clone());
        run.recording_bytes = Some(size);
    }
    if code != Some(0) {
        bail!("mhpscope record exited {code:?}:\n{}", log.trim_end());
    }
    Ok(())
}

/// Whether top's screen shows all `n` hot-added blocks onlined (the checks compare per node).
fn top_shows_onlines(screen: &str, n: usize) -> bool {
    let v = crate::lab::top_screen::parse_top_screen(screen);
    v.hot_added_blocks == Some(n as u64) && v.nodes.values().map(|&(_, on)| on).sum::<u64>() >= n as u64
}
