//! Online and offline attempts of memory blocks, each with its result and, when it failed, why:
//! the reason in the kernel's own words, inferred from which step returned the error, and the
//! page that stood in the way.
//!
//! `offline_pages()` keeps its failure reason in a local string that only pr_debug prints. Its
//! steps are the same on 6.1, 6.12 and 7.2, in this order (mm/memory_hotplug.c; 7.x adds the
//! node notifier, asked before the memory notifier when the range is the node's last memory):
//!
//! | reason (the kernel's words) | step that returned the error | errno |
//! |---|---|---|
//! | "memory holes" | `walk_system_ram_range` counted fewer RAM pages than the range | EINVAL |
//! | "multizone range" | first or last page in another zone (checked right after) | EINVAL |
//! | "failure to isolate range" | `start_isolate_page_range`; it dumps the first unmovable page (slab, reserved, page tables, other kernel memory) | EBUSY |
//! | "node notifier failure" | `node_notify(NODE_REMOVING_LAST_MEMORY)` refused (7.x) | the notifier's |
//! | "notifier failure" | `memory_notify(MEM_GOING_OFFLINE)` refused | the notifier's |
//! | "signal backoff" | a signal was pending in the migration loop | EINTR |
//! | "unmovable page" | `scan_movable_pages` met a referenced PageOffline page (balloon, virtio-mem) | EBUSY |
//! | "failure to dissolve huge pages" | the hugetlb dissolve step | EBUSY, ENOMEM |
//!
//! Steps are events of the same task inside the `offline_pages` call (they end before it), so
//! the inference needs only their order, not the kernel version.
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::recent::Recent;
use crate::model::event::{NotifyAction, OnlinePolicy, OnlinePolicyKind, OnlineType, ZoneId};

/// Why an online or offline failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    MemoryHoles,
    MultizoneRange,
    FailureToIsolateRange,
    NotifierFailure,
    NodeNotifierFailure,
    SignalBackoff,
    UnmovablePage,
    FailureToDissolveHugePages,
    /// drivers/base/memory.c refused the block before `offline_pages`/`online_pages` ran: it
    /// has holes or spans zones, so it belongs to no single zone.
    BlockSpansZones,
    /// `mhp_init_memmap_on_memory` failed before `online_pages`.
    MemmapOnMemoryInit,
    /// The block device refused it before `online_pages`/`offline_pages`, for a reason the
    /// probes do not show.
    RefusedByBlockDevice,
    /// The steps seen do not tell (a probe was not attached, or an error this mhpscope does
    /// not know).
    Unknown,
}

impl FailReason {
    /// The kernel's own words for `offline_pages` reasons; plain words for the others.
    pub fn kernel_words(self) -> &'static str {
        match self {
            FailReason::MemoryHoles => "memory holes",
            FailReason::MultizoneRange => "multizone range",
            FailReason::FailureToIsolateRange => "failure to isolate range",
            FailReason::NotifierFailure => "notifier failure",
            FailReason::NodeNotifierFailure => "node notifier failure",
            FailReason::SignalBackoff => "signal backoff",
            FailReason::UnmovablePage => "unmovable page",
            FailReason::FailureToDissolveHugePages => "failure to dissolve huge pages",
            FailReason::BlockSpansZones => "block has holes or spans zones (no single zone)",
            FailReason::MemmapOnMemoryInit => "memmap on memory initialisation failed",
            FailReason::RefusedByBlockDevice => "refused by the memory block device",
            FailReason::Unknown => "unknown",
        }
    }

    /// Whether `offline_pages` itself prints this reason ("failed due to ...").
    pub fn is_offline_pages_reason(self) -> bool {
        matches!(
            self,
            FailReason::MemoryHoles
                | FailReason::MultizoneRange
                | FailReason::FailureToIsolateRange
                | FailReason::NotifierFailure
                | FailReason::NodeNotifierFailure
                | FailReason::SignalBackoff
                | FailReason::UnmovablePage
                | FailReason::FailureToDissolveHugePages
        )
    }
}

/// One step of an online/offline, as its probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    WalkRam { nr_pages: u64, ram_pages: u64 },
    Isolate { ret: i32 },
    Notify { action: NotifyAction, ret: i32 },
    NodeNotify { ret: i32 },
    Dissolve { ret: i32 },
    TestIsolated { end_pfn: u64, fin_pfn: u64 },
    Migrate { succeeded: u64, failed: u64 },
    Dump(DumpedPage),
    MemmapOnMemory { ret: i32 },
}

/// A page the kernel dumped while onlining or offlining, as the probe read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedPage {
    pub pfn: u64,
    pub flags: u64,
    pub refcount: i32,
    pub mapcount: i32,
    pub page_type: u32,
    pub reason: String,
}

const EINVAL: i32 = -22;
const EINTR: i32 = -4;
const EBUSY: i32 = -16;

/// Why `offline_pages` returned `ret`, from the steps it took (in order).
pub fn offline_reason(steps: &[Step], ret: i32) -> FailReason {
    if ret == 0 {
        return FailReason::Unknown;
    }
    let mut walked = false;
    let mut isolated = false;
    for step in steps {
        match *step {
            Step::WalkRam { nr_pages, ram_pages } => {
                if ram_pages != nr_pages {
                    return FailReason::MemoryHoles;
                }
                walked = true;
            }
            Step::Isolate { ret: r } => {
                if r != 0 {
                    return FailReason::FailureToIsolateRange;
                }
                isolated = true;
            }
            Step::Notify {
                action: NotifyAction::GoingOffline,
                ret: r,
            } if r != 0 => return FailReason::NotifierFailure,
            Step::NodeNotify { ret: r } if r != 0 => return FailReason::NodeNotifierFailure,
            Step::Dissolve { ret: r } if r != 0 => return FailReason::FailureToDissolveHugePages,
            _ => {}
        }
    }
    if !isolated {
        // The range checks come before isolation: holes were ruled out by the walk.
        return if ret == EINVAL && walked {
            FailReason::MultizoneRange
        } else {
            FailReason::Unknown
        };
    }
    match ret {
        EINTR => FailReason::SignalBackoff,
        EBUSY => FailReason::UnmovablePage,
        _ => FailReason::Unknown,
    }
}

/// Why `online_pages` (or the block's online before it) returned `ret`.
pub fn online_reason(steps: &[Step], ret: i32) -> FailReason {
    if ret == 0 {
        return FailReason::Unknown;
    }
    for step in steps {
        match *step {
            Step::MemmapOnMemory { ret: r } if r != 0 => return FailReason::MemmapOnMemoryInit,
            Step::Notify {
                action: NotifyAction::GoingOnline,
                ret: r,
            } if r != 0 => return FailReason::NotifierFailure,
            Step::NodeNotify { ret: r } if r != 0 => return FailReason::NodeNotifierFailure,
            _ => {}
        }
    }
    FailReason::Unknown
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    Online,
    Offline,
}

/// What migration did during one offline attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Migration {
    /// `mm_migrate_pages` passes.
    pub passes: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// `test_pages_isolated` checks that found a page not yet free: another round followed.
    pub retries: u64,
}

/// One online or offline attempt of a memory block (or of a pfn range, when the block-device
/// probes are not attached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub ts_ns: u64,
    pub duration_ns: u64,
    pub tid: u32,
    pub kind: AttemptKind,
    /// The memory block, when the block device's probe saw it.
    pub block: Option<u64>,
    /// The range `online_pages`/`offline_pages` was called for (None when refused before).
    pub pages: Option<(u64, u64)>,
    pub node: Option<i32>,
    pub zone: Option<ZoneId>,
    /// What the online asked for.
    pub requested: Option<OnlineType>,
    /// The online policy in force as the online ran (read in the kernel).
    pub policy: Option<OnlinePolicy>,
    /// Onlined by the kernel itself while hot-adding (auto_online_blocks).
    pub auto_online: bool,
    pub ret: i32,
    pub reason: Option<FailReason>,
    /// The first page the kernel dumped during the attempt.
    pub blocking_page: Option<DumpedPage>,
    pub migration: Migration,
    /// Whether the block device's probe has claimed this attempt (internal bookkeeping).
    claimed: bool,
}

/// A return of the block device's online or offline (`memory_subsys_online`/`_offline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCall {
    pub kind: AttemptKind,
    pub tid: u32,
    pub start_ns: u64,
    pub ts_ns: u64,
    pub block: u64,
    pub node: i32,
    pub zone: Option<ZoneId>,
    pub requested: Option<OnlineType>,
    pub policy: Option<OnlinePolicy>,
    pub ret: i32,
}

/// Steps kept per task while its online/offline runs; a task that never finishes one cannot
/// make this grow without bound.
const MAX_STEPS: usize = 256;

/// What attempts are counted by: kind, return value, reason, node.
pub type AttemptKey = (AttemptKind, i32, Option<FailReason>, Option<i32>);

/// Attempts, and the steps of attempts still running, by task.
#[derive(Debug, Clone, Default)]
pub struct Attempts {
    /// The latest attempts (`--keep`).
    pub list: Recent<Attempt>,
    /// Every attempt, exactly: counted at the pages' call and moved to its final key when the
    /// block device's call around it changes its result.
    pub counts: BTreeMap<AttemptKey, u64>,
    /// Every block online by what was asked, the policy in force, where it went (None: it
    /// failed) and on which node: why each zone, exactly.
    pub decisions: BTreeMap<Decision, u64>,
    steps: BTreeMap<u32, Vec<(u64, Step)>>,
}

/// What an online asked for, the policy that decided, the zone it got (None: it failed).
pub type Decision = (OnlineType, Option<OnlinePolicyKind>, Option<ZoneId>, i32);

fn key(a: &Attempt) -> AttemptKey {
    (a.kind, a.ret, a.reason, a.node)
}

impl Attempts {
    pub fn set_keep(&mut self, keep: usize) {
        self.list.set_cap(keep);
    }

    fn count(&mut self, a: &Attempt, delta: i64) {
        let c = self.counts.entry(key(a)).or_default();
        *c = c.saturating_add_signed(delta);
    }

    fn push(&mut self, a: Attempt) {
        self.count(&a, 1);
        self.list.push(a);
    }

    /// A step of `tid` at `ts_ns` (its end).
    pub fn step(&mut self, tid: u32, ts_ns: u64, step: Step) {
        let steps = self.steps.entry(tid).or_default();
        if steps.len() >= MAX_STEPS {
            // Keep the first steps (they decide the reason) and the last dump.
            if !matches!(step, Step::Dump(_)) {
                return;
            }
            steps.pop();
        }
        steps.push((ts_ns, step));
    }

    /// `online_pages` or `offline_pages` returned: the attempt with its steps.
    #[allow(clippy::too_many_arguments)]
    pub fn pages_done(
        &mut self,
        kind: AttemptKind,
        tid: u32,
        start_ns: u64,
        ts_ns: u64,
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        ret: i32,
    ) {
        let steps = self.take_steps(tid, start_ns);
        let mut migration = Migration::default();
        let mut blocking_page = None;
        for step in &steps {
            match step {
                Step::Migrate { succeeded, failed } => {
                    migration.passes += 1;
                    migration.succeeded += succeeded;
                    migration.failed += failed;
                }
                Step::TestIsolated { end_pfn, fin_pfn } if fin_pfn < end_pfn => migration.retries += 1,
                Step::Dump(page) if blocking_page.is_none() => blocking_page = Some(page.clone()),
                _ => {}
            }
        }
        let reason = (ret != 0).then(|| match kind {
            AttemptKind::Offline => offline_reason(&steps, ret),
            AttemptKind::Online => online_reason(&steps, ret),
        });
        self.push(Attempt {
            ts_ns,
            duration_ns: ts_ns.saturating_sub(start_ns),
            tid,
            kind,
            block: None,
            pages: Some((pfn, nr_pages)),
            node: Some(zone.node),
            zone: Some(zone),
            requested: None,
            policy: None,
            auto_online: false,
            ret,
            reason,
            blocking_page,
            migration,
            claimed: false,
        });
    }

    /// The block device's online/offline returned. It wraps the `online_pages`/`offline_pages`
    /// call when there was one; otherwise it refused the block itself.
    #[allow(clippy::too_many_arguments)]
    pub fn block_done(&mut self, call: BlockCall) {
        if let (AttemptKind::Online, Some(requested)) = (call.kind, call.requested) {
            let zone = if call.ret == 0 { call.zone } else { None };
            let key = (requested, call.policy.map(|p| p.policy), zone, call.node);
            *self.decisions.entry(key).or_default() += 1;
        }
        let BlockCall {
            kind,
            tid,
            start_ns,
            ts_ns,
            block,
            node,
            zone,
            requested,
            policy,
            ret,
        } = call;
        let inner = self.list.iter_mut().rev().take(64).find(|a| {
            !a.claimed && a.tid == tid && a.kind == kind && a.ts_ns >= start_ns && a.ts_ns <= ts_ns
        });
        if let Some(a) = inner {
            let before = key(a);
            a.claimed = true;
            a.block = Some(block);
            a.requested = requested;
            a.policy = policy;
            a.zone = a.zone.or(zone);
            // The block's call includes the memmap-on-memory work around the pages' call.
            a.duration_ns = ts_ns.saturating_sub(start_ns);
            if ret != 0 && a.ret == 0 {
                a.ret = ret;
                a.reason = Some(FailReason::RefusedByBlockDevice);
            }
            let after = key(a);
            if after != before {
                let c = self.counts.entry(before).or_default();
                *c = c.saturating_sub(1);
                *self.counts.entry(after).or_default() += 1;
            }
            self.steps.remove(&tid);
            return;
        }
        let steps = self.take_steps(tid, start_ns);
        let reason = (ret != 0).then(|| match kind {
            AttemptKind::Offline if zone.is_none() && ret == EINVAL => FailReason::BlockSpansZones,
            AttemptKind::Online => match online_reason(&steps, ret) {
                FailReason::Unknown => FailReason::RefusedByBlockDevice,
                r => r,
            },
            AttemptKind::Offline => FailReason::RefusedByBlockDevice,
        });
        self.push(Attempt {
            ts_ns,
            duration_ns: ts_ns.saturating_sub(start_ns),
            tid,
            kind,
            block: Some(block),
            pages: None,
            node: Some(node),
            zone,
            requested,
            policy,
            auto_online: false,
            ret,
            reason,
            blocking_page: None,
            migration: Migration::default(),
            claimed: true,
        });
    }

    /// A hot-add of `tid` over [start_ns, ts_ns] returned: onlines inside it were the kernel's
    /// own (auto_online_blocks).
    pub fn hot_add_done(&mut self, tid: u32, start_ns: u64, ts_ns: u64) {
        for a in self.list.iter_mut().rev().take(4096) {
            if a.ts_ns < start_ns {
                break;
            }
            if a.tid == tid && a.kind == AttemptKind::Online && a.ts_ns <= ts_ns {
                a.auto_online = true;
            }
        }
    }

    fn take_steps(&mut self, tid: u32, start_ns: u64) -> Vec<Step> {
        self.steps
            .remove(&tid)
            .unwrap_or_default()
            .into_iter()
            .filter(|(ts, _)| *ts >= start_ns)
            .map(|(_, s)| s)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailReason::*;

    const N: u64 = 32768;

    fn walk(ram: u64) -> Step {
        Step::WalkRam {
            nr_pages: N,
            ram_pages: ram,
        }
    }
    fn isolate(ret: i32) -> Step {
        Step::Isolate { ret }
    }
    fn notify(action: NotifyAction, ret: i32) -> Step {
        Step::Notify { action, ret }
    }
    fn migrate(ok: u64) -> Step {
        Step::Migrate {
            succeeded: ok,
            failed: 0,
        }
    }
    fn dissolve(ret: i32) -> Step {
        Step::Dissolve { ret }
    }
    fn tested(done: bool) -> Step {
        Step::TestIsolated {
            end_pfn: 100,
            fin_pfn: if done { 100 } else { 40 },
        }
    }

    /// The step sequences each kernel's offline_pages produces for each reason. 6.1 and 6.12
    /// run the same steps; 7.2 adds the node notifier after the memory notifier.
    fn cases(node_notifier: bool) -> Vec<(Vec<Step>, i32, FailReason)> {
        let going = |ret| notify(NotifyAction::GoingOffline, ret);
        let cancel = notify(NotifyAction::CancelOffline, 0);
        // 7.2 asks the node notifier first, when the range is the node's last memory.
        let mut ok_notifiers = vec![going(0)];
        if node_notifier {
            ok_notifiers.insert(0, Step::NodeNotify { ret: 0 });
        }
        let after_notify = |tail: Vec<Step>| {
            let mut s = vec![walk(N), isolate(0)];
            s.extend(ok_notifiers.clone());
            s.extend(tail);
            s
        };
        let mut v = vec![
            (vec![walk(N - 32)], EINVAL, MemoryHoles),
            (vec![walk(N)], EINVAL, MultizoneRange),
            (vec![walk(N), isolate(EBUSY)], EBUSY, FailureToIsolateRange),
            (
                vec![walk(N), isolate(0), going(EBUSY), cancel.clone()],
                EBUSY,
                NotifierFailure,
            ),
            (
                vec![walk(N), isolate(0), going(-12), cancel.clone()],
                -12,
                NotifierFailure,
            ),
            (
                after_notify(vec![migrate(3), cancel.clone()]),
                EINTR,
                SignalBackoff,
            ),
            (
                after_notify(vec![migrate(3), cancel.clone()]),
                EBUSY,
                UnmovablePage,
            ),
            (
                after_notify(vec![migrate(2), dissolve(EBUSY), cancel.clone()]),
                EBUSY,
                FailureToDissolveHugePages,
            ),
            // Retried rounds that end in a signal are still a signal backoff.
            (
                after_notify(vec![
                    migrate(1),
                    dissolve(0),
                    tested(false),
                    migrate(1),
                    cancel.clone(),
                ]),
                EINTR,
                SignalBackoff,
            ),
        ];
        if node_notifier {
            v.push((
                vec![walk(N), isolate(0), Step::NodeNotify { ret: EBUSY }, cancel],
                EBUSY,
                NodeNotifierFailure,
            ));
        }
        v
    }

    #[test]
    fn each_kernel_sequence_gives_its_reason() {
        for (kernel, node_notifier) in [("6.1", false), ("6.12", false), ("7.2", true)] {
            for (steps, ret, want) in cases(node_notifier) {
                assert_eq!(offline_reason(&steps, ret), want, "{kernel}: {steps:?} ret {ret}");
            }
        }
    }

    #[test]
    fn sequences_that_must_not_give_a_reason() {
        // A refused cancel notification after a successful walk is not a notifier failure.
        let steps = vec![walk(N), isolate(0), notify(NotifyAction::CancelOffline, EBUSY)];
        assert_eq!(offline_reason(&steps, EBUSY), UnmovablePage);
        // Without the walk's count an early EINVAL may be holes or zones: say unknown.
        assert_eq!(offline_reason(&[], EINVAL), Unknown);
        // A successful isolation then an EINVAL is none of the known reasons.
        assert_eq!(offline_reason(&[walk(N), isolate(0)], EINVAL), Unknown);
        // The EBUSY of a failed isolation is not an unmovable page found by the scan.
        assert_ne!(offline_reason(&[walk(N), isolate(EBUSY)], EBUSY), UnmovablePage);
        // Full RAM and an early EBUSY: not holes.
        assert_ne!(offline_reason(&[walk(N)], EBUSY), MemoryHoles);
        // A node notifier that agreed does not fail the offline.
        let steps = vec![
            walk(N),
            isolate(0),
            notify(NotifyAction::GoingOffline, 0),
            Step::NodeNotify { ret: 0 },
        ];
        assert_eq!(offline_reason(&steps, EBUSY), UnmovablePage);
        // A dissolve that succeeded is not the reason.
        let steps = vec![walk(N), isolate(0), dissolve(0)];
        assert_eq!(offline_reason(&steps, EINTR), SignalBackoff);
        // Success has no reason.
        assert_eq!(offline_reason(&[walk(N), isolate(0)], 0), Unknown);
    }

    #[test]
    fn online_reasons() {
        let going = |ret| notify(NotifyAction::GoingOnline, ret);
        assert_eq!(online_reason(&[going(EBUSY)], EBUSY), NotifierFailure);
        assert_eq!(online_reason(&[going(0)], -12), Unknown);
        assert_eq!(
            online_reason(&[Step::MemmapOnMemory { ret: -12 }], -12),
            MemmapOnMemoryInit
        );
        // An offline notifier's refusal says nothing about an online.
        assert_eq!(
            online_reason(&[notify(NotifyAction::GoingOffline, EBUSY)], EBUSY),
            Unknown
        );
    }

    fn offline_call(
        start_ns: u64,
        ts_ns: u64,
        block: u64,
        node: i32,
        zone: Option<ZoneId>,
        ret: i32,
    ) -> BlockCall {
        BlockCall {
            kind: AttemptKind::Offline,
            tid: 7,
            start_ns,
            ts_ns,
            block,
            node,
            zone,
            requested: None,
            policy: None,
            ret,
        }
    }

    fn zone() -> ZoneId {
        ZoneId { node: 1, zone: 2 }
    }

    #[test]
    fn a_refused_block_is_an_attempt_with_the_block_device_reason() {
        let mut a = Attempts::default();
        a.block_done(offline_call(100, 200, 0, 0, None, EINVAL));
        assert_eq!(a.list.len(), 1);
        assert_eq!(a.list[0].reason, Some(BlockSpansZones));
        assert_eq!(a.list[0].pages, None);
    }

    #[test]
    fn the_block_call_claims_the_pages_call_inside_it() {
        let mut a = Attempts::default();
        a.step(7, 110, walk(N));
        a.step(7, 120, isolate(EBUSY));
        a.step(
            7,
            121,
            Step::Dump(DumpedPage {
                pfn: 0x108200,
                flags: 0x400,
                refcount: 1,
                mapcount: -1,
                page_type: 0xffff_ffff,
                reason: "unmovable page".into(),
            }),
        );
        // Another task's steps stay apart.
        a.step(8, 115, isolate(0));
        a.pages_done(AttemptKind::Offline, 7, 105, 130, 0x108000, N, zone(), EBUSY);
        a.block_done(offline_call(100, 140, 33, 1, Some(zone()), EBUSY));
        assert_eq!(a.list.len(), 1);
        let at = &a.list[0];
        assert_eq!(at.block, Some(33));
        assert_eq!(at.reason, Some(FailureToIsolateRange));
        assert_eq!(at.blocking_page.as_ref().map(|p| p.pfn), Some(0x108200));
        assert_eq!(at.duration_ns, 40);
        assert!(a.steps.contains_key(&8));
    }

    #[test]
    fn steps_before_the_call_began_are_not_its_own() {
        let mut a = Attempts::default();
        a.step(7, 50, isolate(EBUSY));
        a.pages_done(AttemptKind::Offline, 7, 100, 130, 0, N, zone(), EBUSY);
        assert_ne!(a.list[0].reason, Some(FailureToIsolateRange));
    }

    #[test]
    fn migration_is_summed_per_attempt() {
        let mut a = Attempts::default();
        for (ts, s) in [
            (110, migrate(5)),
            (120, tested(false)),
            (130, migrate(2)),
            (140, tested(true)),
        ] {
            a.step(7, ts, s);
        }
        a.pages_done(AttemptKind::Offline, 7, 100, 150, 0, N, zone(), 0);
        let m = a.list[0].migration;
        assert_eq!((m.passes, m.succeeded, m.retries), (2, 7, 1));
        assert_eq!(a.list[0].reason, None);
    }

    #[test]
    fn onlines_inside_a_hot_add_are_auto_onlines() {
        let mut a = Attempts::default();
        a.pages_done(AttemptKind::Online, 7, 110, 120, 0, N, zone(), 0);
        a.pages_done(AttemptKind::Online, 9, 110, 120, 0, N, zone(), 0);
        a.hot_add_done(7, 100, 200);
        assert!(a.list[0].auto_online);
        assert!(!a.list[1].auto_online);
    }

    #[test]
    fn a_task_that_never_finishes_keeps_bounded_steps() {
        let mut a = Attempts::default();
        for i in 0..10_000 {
            a.step(7, i, migrate(1));
        }
        assert!(a.steps[&7].len() <= MAX_STEPS);
    }
}
