//! The `failures` scenario: one boot (memmap_on_memory=0, dynamic debug on for
//! mm/memory_hotplug.c so the kernel log carries offline_pages' reasons) that provokes every
//! online/offline failure the lab can and records what the guest itself saw:
//!
//! 1. offline a boot block spanning two zones (valid_zones "none"): refused before offline_pages;
//! 2. offline a boot block with holes inside one zone: "memory holes";
//! 3. d1 (128 MiB, node 1) onlined `online_kernel`, filled with slab from a task on node 1's CPU,
//!    offlined: "failure to isolate range", with the unmovable page dumped;
//! 4. d2 (256 MiB, node 1): one block `online_movable`; MEM_GOING_OFFLINE error injected, offline
//!    it: "notifier failure"; MEM_GOING_ONLINE error injected, online the other: fails; then
//!    online that one with plain `online` under online_policy=auto-movable;
//! 5. a tmpfs file from node 1 fills the movable blocks; offline one and signal the writer once
//!    the block is going offline: "signal backoff";
//!    then offline the other movable block while the file is there: it works, migrating pages;
//! 6. d3 (1 GiB, node 1) hot-added and never onlined (readiness), its memmap from node 1;
//! 7. d4 (128 MiB, node 0) with auto_online_blocks=online: the kernel onlines it;
//!
//! then keeps the recorder running past the readiness grace, reads the configuration, and
//! powers off (the blocks that cannot be offlined stay: no unplug).

use super::{poweroff, prepare, save_dmesg, start_recorder, stop_recorder_step, Ctx, DimmPlan, MEM};
use crate::lab::failtruth::{self, AddTiming, AutoOnline, Failures, Fill, SignalRun, TimedWrite};
use crate::lab::truth;
use crate::vm::initramfs::LOAD_INJECT;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `report --headroom-warn` for this scenario: the 1 GiB DIMM's 16 MiB of memmap is about 2%
/// of node 1's free memory, the 128 and 256 MiB ones' 0.5-0.8% (6.1 lab guest).
pub const HEADROOM_WARN: &str = "1.4%";
/// `report --online-grace`; the scenario keeps recording this long (plus a margin) after d3.
pub const ONLINE_GRACE_S: f64 = 5.0;

const INJECT: &str = "/sys/kernel/debug/notifier-error-inject/memory/actions";
const PARAMS: &str = "/sys/module/memory_hotplug/parameters";
const DYNDBG: &str = "/sys/kernel/debug/dynamic_debug/control";
/// The knobs the configuration audit reads, as (name, sysfs file).
const CONFIG_FILES: &[(&str, &str)] = &[
    (
        "memmap_on_memory",
        "/sys/module/memory_hotplug/parameters/memmap_on_memory",
    ),
    (
        "auto_online_blocks",
        "/sys/devices/system/memory/auto_online_blocks",
    ),
    (
        "online_policy",
        "/sys/module/memory_hotplug/parameters/online_policy",
    ),
    (
        "auto_movable_ratio",
        "/sys/module/memory_hotplug/parameters/auto_movable_ratio",
    ),
    (
        "auto_movable_numa_aware",
        "/sys/module/memory_hotplug/parameters/auto_movable_numa_aware",
    ),
    ("block_size_bytes", "/sys/devices/system/memory/block_size_bytes"),
];
/// Directories the slab fill creates (shmem inodes and dentries: about 1 KiB of slab each).
const SLAB_DIRS: u32 = 20000;
/// MiB of tmpfs file the movable fill writes from node 1.
const MOVABLE_FILL_MIB: u32 = 160;

fn dimm(c: &Ctx, id: &str) -> Result<DimmPlan> {
    c.plan
        .dimms
        .iter()
        .find(|d| d.id == id)
        .copied()
        .with_context(|| format!("plan has no DIMM {id}"))
}

fn f<'c>(c: &'c mut Ctx<'_>) -> &'c mut Failures {
    c.truth.failures.get_or_insert_with(Failures::default)
}

impl Ctx<'_> {
    fn uptime(&mut self) -> Result<f64> {
        let out = self.sh("read u _ < /proc/uptime; echo $u", 30)?;
        failtruth::parse_uptime(&out).context("guest /proc/uptime")
    }

    fn zoneinfo(&mut self) -> Result<truth::Parsed> {
        let zones = truth::parse_zoneinfo(&self.sh("cat /proc/zoneinfo", 60)?)?;
        Ok(truth::Parsed {
            zones,
            ..Default::default()
        })
    }

    fn read_config(&mut self) -> Result<BTreeMap<String, String>> {
        let cmd: Vec<String> = CONFIG_FILES
            .iter()
            .map(|(k, p)| format!("echo \"{k}=$(cat {p} 2>/dev/null)\""))
            .collect();
        let out = self.sh(&cmd.join("; "), 30)?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect())
    }

    /// One write to memoryN/state with the guest's clock around it, the result the shell saw,
    /// and the block's state and valid_zones after it.
    fn timed_write(
        &mut self,
        test: &str,
        block: u64,
        value: &str,
        policy: &str,
        injected: Option<(&str, i32)>,
    ) -> Result<TimedWrite> {
        let dir = format!("{MEM}/memory{block}");
        let mig = "m=0; while read k n; do [ \"$k\" = pgmigrate_success ] && m=$n; done < /proc/vmstat";
        let cmd = format!(
            "{mig}; m0=$m; read t0 _ < /proc/uptime; echo {value} > {dir}/state; r=$?; read t1 _ < /proc/uptime; \
             {mig}; s=$(cat {dir}/state); v=$(cat {dir}/valid_zones 2>/dev/null); echo \"@@W $r $t0 $t1 $m0 $m $s|$v\""
        );
        let out = self.sh_rc(&cmd, 600)?;
        let (shell, last) = out
            .text
            .trim_end()
            .rsplit_once("@@W ")
            .with_context(|| format!("no result line from the write: {}", out.text))?;
        let (nums, zones) = last.split_once('|').unwrap_or((last, ""));
        let w: Vec<&str> = nums.split_whitespace().collect();
        let [rc, t0, t1, m0, m1, state] = w.as_slice() else {
            bail!("bad result line {last:?}");
        };
        let shell = shell.trim().to_string();
        let rc: i32 = rc.parse()?;
        let tw = TimedWrite {
            test: test.into(),
            block,
            value: value.into(),
            rc,
            errno: if rc == 0 {
                None
            } else {
                Some(
                    failtruth::errno_of_output(&shell)
                        .unwrap_or("unknown")
                        .to_string(),
                )
            },
            output: shell,
            t0: t0.parse()?,
            t1: t1.parse()?,
            policy: policy.into(),
            injected: injected.map(|(a, e)| (a.to_string(), e)),
            valid_zones_after: Some(zones.trim().to_string()).filter(|z| !z.is_empty()),
            state_after: Some(state.to_string()),
            migrated: m0.parse().ok().zip(m1.parse().ok()),
        };
        println!(
            "lab:        echo {value} > memory{block}/state: rc {rc} {:?} ({:.2} s); now {} in {:?}",
            tw.errno.as_deref().unwrap_or("ok"),
            tw.t1 - tw.t0,
            state,
            tw.valid_zones_after
        );
        f(self).writes.push(tw.clone());
        Ok(tw)
    }

    /// Hot-adds one DIMM with the guest's clock and zoneinfo's free pages right before QMP's
    /// device_add and right after its blocks appear; returns the new blocks.
    fn timed_add(&mut self, d: &DimmPlan, auto_online_blocks: &str) -> Result<Vec<u64>> {
        let before_ids = self.block_ids()?;
        let expect = (d.size / self.block_size()?) as usize;
        let t_before = self.uptime()?;
        let zb = self.zoneinfo()?;
        self.plug(d)?;
        self.query_memory_devices()?;
        let id = d.id;
        self.wait_blocks(&format!("{expect} new block(s) of {id}"), 120, |ids| {
            ids.iter().filter(|i| !before_ids.contains(i)).count() >= expect
        })?;
        let t_seen = self.uptime()?;
        let za = self.zoneinfo()?;
        let prev = self
            .truth
            .snapshots
            .last()
            .context("no snapshot before add")?
            .parsed
            .block_ids();
        self.snapshot(&format!("after-add-{id}"))?;
        let now = self.truth.snapshots.last().unwrap().parsed.block_ids();
        let new: Vec<u64> = now.into_iter().filter(|i| !prev.contains(i)).collect();
        println!("lab:        {id}: blocks {new:?}");
        self.truth.dimms.last_mut().unwrap().blocks = new.clone();
        let add = AddTiming {
            dimm: id.into(),
            node: d.node,
            t_before,
            t_seen,
            free_before: failtruth::free_per_node(&zb),
            free_after: failtruth::free_per_node(&za),
            stat_threshold: failtruth::per_node(&zb, |z| z.stat_threshold),
            pcp_count: failtruth::per_node(&zb, |z| z.pcp_count),
            pcp_batch: failtruth::per_node(&zb, |z| z.pcp_batch),
            auto_online_blocks: auto_online_blocks.into(),
        };
        println!(
            "lab:        free pages before {:?}, after {:?}",
            add.free_before, add.free_after
        );
        f(self).adds.push(add);
        Ok(new)
    }

    fn set_injection(&mut self, action: &str, err: i32) -> Result<()> {
        self.sh(&format!("echo {err} > {INJECT}/{action}/error"), 30)?;
        let now = self.sh(&format!("cat {INJECT}/{action}/error"), 30)?;
        if now.trim() != err.to_string() {
            bail!("{action}/error reads {:?} after writing {err}", now.trim());
        }
        Ok(())
    }

    fn set_policy(&mut self, policy: &str) -> Result<()> {
        self.sh(&format!("echo {policy} > {PARAMS}/online_policy"), 30)?;
        let now = self.sh(&format!("cat {PARAMS}/online_policy"), 30)?;
        if now.trim() != policy {
            bail!("online_policy reads {:?} after writing {policy}", now.trim());
        }
        Ok(())
    }

    /// Runs `cmd` (from node 1's CPU) and records node 1's free pages per zone around it.
    fn fill(&mut self, what: &str, cmd: &str) -> Result<()> {
        let node_free = |p: &truth::Parsed| -> BTreeMap<String, u64> {
            p.zones
                .iter()
                .filter(|z| z.node == 1)
                .map(|z| (z.zone.clone(), z.free.unwrap_or(0)))
                .collect()
        };
        let before = node_free(&self.zoneinfo()?);
        let out = self.sh_rc(cmd, 600)?;
        let after = node_free(&self.zoneinfo()?);
        println!(
            "lab:        {what}: rc {}; node 1 free pages {before:?} -> {after:?}",
            out.rc
        );
        let rc = out.rc;
        let text = out.text.trim().to_string();
        f(self).fills.push(Fill {
            what: what.into(),
            cmd: cmd.into(),
            rc,
            output: text.clone(),
            free_before: before,
            free_after: after,
        });
        if rc != 0 {
            bail!("{what} failed ({rc}): {text}");
        }
        Ok(())
    }
}

pub fn run(c: &mut Ctx) -> Result<()> {
    c.step(
        "prepare",
        "auto_online_blocks=offline, uname -r, memmap_on_memory, nodes, boot log, load virtio_balloon, snapshot boot",
        prepare,
    )?;
    c.step(
        "prepare-failures",
        "dynamic debug +p for mm/memory_hotplug.c; insmod memory-notifier-error-inject; configuration; \
         the boot blocks spanning zones and with holes",
        |c| {
            c.sh(&format!("echo 'file mm/memory_hotplug.c +p' > {DYNDBG}"), 30)?;
            let n = c.sh(
                &format!("grep 'memory_hotplug.c:' {DYNDBG} | grep -c ' =p ' || true"),
                30,
            )?;
            f(c).dyndbg_sites = n.trim().parse().unwrap_or(0);
            let ld = c.sh_rc(LOAD_INJECT, 60)?;
            let ok = ld.rc == 0 && c.sh_rc(&format!("test -d {INJECT}/MEM_GOING_OFFLINE"), 30)?.rc == 0;
            f(c).inject_loaded = ok;
            if !ok {
                bail!("memory-notifier-error-inject did not load: {}", ld.text.trim());
            }
            let cfg = c.read_config()?;
            f(c).config_start = cfg;
            f(c).cmdline = c.sh("cat /proc/cmdline", 30)?.trim().to_string();
            let boot = &c.truth.snapshot("boot")?.parsed;
            let (spans, holes, names) = (
                failtruth::spans_zones_block(boot),
                failtruth::holes_block(boot),
                failtruth::zone_names(boot),
            );
            println!(
                "lab:        {} dynamic debug sites; block spanning zones {spans:?}; with holes {holes:?}; zones {names:?}",
                f(c).dyndbg_sites
            );
            let fl = f(c);
            fl.spans_zones_block = spans;
            fl.holes_block = holes;
            fl.zone_names = names;
            if fl.dyndbg_sites == 0 {
                bail!("dynamic debug shows no printing site in mm/memory_hotplug.c");
            }
            Ok(())
        },
    )?;

    if c.with_mhpscope {
        c.step(
            "start-recorder",
            "mhpscope record -o /tmp/rec.ndjson &, wait for its header; mhpscope probes",
            start_recorder,
        )?;
    } else {
        c.skip("start-recorder", "--no-mhpscope");
    }
    c.step("before-add", "snapshot before-add", |c| c.snapshot("before-add"))?;
    let contig = "contig-zones";

    c.step(
        "boot-blocks",
        "echo offline > state of the boot block spanning two zones (EINVAL before offline_pages) and of the one with holes (memory holes)",
        |c| {
            let spans = f(c).spans_zones_block.context("no boot block spans two zones")?;
            c.timed_write("spans_zones", spans, "offline", contig, None)?;
            let holes = f(c).holes_block.clone().context("no boot block with holes")?;
            c.timed_write("holes", holes.block, "offline", contig, None)?;
            Ok(())
        },
    )?;

    let d1 = dimm(c, "d1")?;
    let d1_blocks = c.step(
        "add-d1",
        "QMP device_add d1 (128 MiB, node 1), zoneinfo before and after; snapshot after-add-d1",
        |c| c.timed_add(&d1, "offline"),
    )?;
    c.step(
        "isolate",
        &format!(
            "online_kernel d1; taskset 2 mkdir {SLAB_DIRS} tmpfs directories (slab on node 1); offline d1: failure to isolate range"
        ),
        |c| {
            for &b in &d1_blocks {
                c.timed_write("online_kernel", b, "online_kernel", contig, None)?;
            }
            c.fill(
                "slab",
                &format!("taskset 2 sh -c 'mkdir /tmp/slab && cd /tmp/slab && mkdir $(seq 1 {SLAB_DIRS})'"),
            )?;
            for &b in &d1_blocks {
                c.timed_write("isolate", b, "offline", contig, None)?;
            }
            Ok(())
        },
    )?;

    let d2 = dimm(c, "d2")?;
    let d2_blocks = c.step(
        "add-d2",
        "QMP device_add d2 (256 MiB, node 1), zoneinfo before and after; snapshot after-add-d2",
        |c| c.timed_add(&d2, "offline"),
    )?;
    let [a, b] = d2_blocks[..] else {
        bail!("d2 should have two blocks, has {d2_blocks:?}");
    };
    c.step(
        "notifier",
        &format!(
            "online_movable memory{a}; MEM_GOING_OFFLINE error -12, offline it; MEM_GOING_ONLINE error -12, online_movable memory{b}; errors back to 0"
        ),
        |c| {
            c.timed_write("online_movable", a, "online_movable", contig, None)?;
            c.set_injection("MEM_GOING_OFFLINE", -12)?;
            let r = c.timed_write(
                "notifier_offline",
                a,
                "offline",
                contig,
                Some(("MEM_GOING_OFFLINE", -12)),
            );
            c.set_injection("MEM_GOING_OFFLINE", 0)?;
            r?;
            c.set_injection("MEM_GOING_ONLINE", -12)?;
            let r = c.timed_write(
                "notifier_online",
                b,
                "online_movable",
                contig,
                Some(("MEM_GOING_ONLINE", -12)),
            );
            c.set_injection("MEM_GOING_ONLINE", 0)?;
            r.map(|_| ())
        },
    )?;
    c.step(
        "auto-movable",
        &format!("online_policy=auto-movable; echo online > memory{b}/state; online_policy=contig-zones"),
        |c| {
            c.set_policy("auto-movable")?;
            let r = c.timed_write("auto_movable", b, "online", "auto-movable", None);
            c.set_policy(contig)?;
            r.map(|_| ())
        },
    )?;

    c.step(
        "signal",
        &format!(
            "taskset 2 dd a {MOVABLE_FILL_MIB} MiB tmpfs file; offline memory{a} in the background, SIGTERM to the writer once it is going-offline: signal backoff; offline memory{b} (migrates); rm the file"
        ),
        |c| {
            c.fill(
                "movable",
                &format!("taskset 2 dd if=/dev/zero of=/tmp/big bs=1M count={MOVABLE_FILL_MIB} 2>&1"),
            )?;
            let st = format!("{MEM}/memory{a}/state");
            let mig = "m=0; while read k n; do [ \"$k\" = pgmigrate_success ] && m=$n; done < /proc/vmstat";
            // The writer is killed by the signal (default action): it never retries the write
            // (busybox's echo retries writes that return EINTR when it survives a signal).
            let cmd = format!(
                "{mig}; m0=$m; read t0 _ < /proc/uptime; sh -c 'echo offline > {st}' & p=$!; i=0; s=x; \
                 while [ $i -lt 20000 ]; do read s < {st}; [ \"$s\" = going-offline ] && break; i=$((i+1)); done; \
                 kill -TERM $p; wait $p; w=$?; read t1 _ < /proc/uptime; {mig}; read s2 < {st}; \
                 echo \"@@S $w $i $t0 $t1 $m0 $m $s $s2\""
            );
            let out = c.sh_rc(&cmd, 600)?;
            let (shell, last) = out
                .text
                .trim_end()
                .rsplit_once("@@S ")
                .with_context(|| format!("no result line: {}", out.text))?;
            let w: Vec<&str> = last.split_whitespace().collect();
            let [ws, polls, t0, t1, m0, m1, seen, after] = w.as_slice() else {
                bail!("bad result line {last:?}");
            };
            let run = SignalRun {
                block: a,
                signal: "TERM".into(),
                saw_going_offline: *seen == "going-offline",
                polls: polls.parse()?,
                wait_status: ws.parse()?,
                state_after: Some(after.to_string()),
                t0: t0.parse()?,
                t1: t1.parse()?,
                output: shell.trim().to_string(),
            };
            println!(
                "lab:        writer exited {} after {} polls (saw going-offline: {}); memory{a} now {after}; {} pages migrated",
                run.wait_status,
                run.polls,
                run.saw_going_offline,
                m1.parse::<u64>().unwrap_or(0).saturating_sub(m0.parse().unwrap_or(0))
            );
            // The same write as the others see it, for the checks that go over every write.
            let tw = TimedWrite {
                test: "signal".into(),
                block: a,
                value: "offline".into(),
                rc: run.wait_status,
                output: run.output.clone(),
                // Killed before it could print: the kernel log says why (signal backoff).
                errno: (run.wait_status != 0).then(|| "EINTR".to_string()),
                t0: run.t0,
                t1: run.t1,
                policy: contig.into(),
                injected: None,
                valid_zones_after: None,
                state_after: run.state_after.clone(),
                migrated: m0.parse().ok().zip(m1.parse().ok()),
            };
            let ok = run.wait_status == 128 + 15 && run.state_after.as_deref() == Some("online");
            f(c).writes.push(tw);
            f(c).signal = Some(run);
            if !ok {
                // The checks say so; the rest of the scenario does not depend on it.
                println!("lab:        warning: the signal did not interrupt the offline of memory{a}");
            }
            // An offline that works, migrating the part of the file in the other block.
            c.timed_write("migrate", b, "offline", contig, None)?;
            c.sh("rm -f /tmp/big", 60)?;
            Ok(())
        },
    )?;

    let d3 = dimm(c, "d3")?;
    c.step(
        "add-d3",
        "QMP device_add d3 (1 GiB, node 1), never onlined; zoneinfo before and after",
        |c| c.timed_add(&d3, "offline").map(|_| ()),
    )?;

    let d4 = dimm(c, "d4")?;
    c.step(
        "auto-online",
        "auto_online_blocks=online; QMP device_add d4 (128 MiB, node 0); wait for the kernel to online it; auto_online_blocks=offline",
        |c| {
            c.sh(&format!("echo online > {MEM}/auto_online_blocks"), 30)?;
            let r = c.timed_add(&d4, "online");
            let blocks = match r {
                Ok(b) => b,
                Err(e) => {
                    c.sh(&format!("echo offline > {MEM}/auto_online_blocks"), 30)?;
                    return Err(e);
                }
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut pending = blocks.clone();
            while !pending.is_empty() {
                let mut left = Vec::new();
                for &b in &pending {
                    let out = c.sh(
                        &format!(
                            "read t _ < /proc/uptime; s=$(cat {MEM}/memory{b}/state); v=$(cat {MEM}/memory{b}/valid_zones 2>/dev/null); echo \"$t $s|$v\""
                        ),
                        30,
                    )?;
                    let (head, zones) = out.trim().split_once('|').unwrap_or((out.trim(), ""));
                    let (t, s) = head.split_once(' ').unwrap_or((head, ""));
                    if s == "online" {
                        f(c).auto_onlined.push(AutoOnline {
                            dimm: d4.id.into(),
                            block: b,
                            state: Some(s.into()),
                            valid_zones: Some(zones.trim().to_string()),
                            t_seen: t.parse().unwrap_or(0.0),
                        });
                        println!("lab:        memory{b} auto-onlined into {}", zones.trim());
                    } else {
                        left.push(b);
                    }
                }
                pending = left;
                if !pending.is_empty() {
                    if Instant::now() >= deadline {
                        c.sh(&format!("echo offline > {MEM}/auto_online_blocks"), 30)?;
                        bail!("blocks {pending:?} of d4 not onlined by the kernel within 60 s");
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
            c.sh(&format!("echo offline > {MEM}/auto_online_blocks"), 30)?;
            Ok(())
        },
    )?;

    c.step(
        "final",
        &format!("wait until {ONLINE_GRACE_S} s (+1 s) after d3's add; configuration; snapshot final"),
        |c| {
            let seen = f(c)
                .adds
                .iter()
                .find(|a| a.dimm == "d3")
                .map(|a| a.t_seen)
                .context("d3 was not added")?;
            loop {
                let now = c.uptime()?;
                if now >= seen + ONLINE_GRACE_S + 1.0 {
                    break;
                }
                std::thread::sleep(Duration::from_secs_f64(
                    (seen + ONLINE_GRACE_S + 1.0 - now).min(5.0),
                ));
            }
            let cfg = c.read_config()?;
            f(c).config_end = cfg;
            c.snapshot("final")?;
            let t = c.uptime()?;
            f(c).t_stop = Some(t);
            Ok(())
        },
    )?;

    stop_recorder_step(c)?;

    c.step(
        "poweroff",
        "save and parse dmesg, poweroff -f (no unplug: blocks in kernel zones may not offline)",
        |c| {
            let dmesg = save_dmesg(c)?;
            let log = failtruth::parse_kernel_log(&dmesg);
            println!("lab:        kernel log: {} events of interest", log.len());
            f(c).kernel_log = log;
            poweroff(c)
        },
    )?;
    c.qmp.drain();
    Ok(())
}
