//! One stream, many views: the state that `report`, `top` and `serve` all build from the same
//! sequence of recording lines, whether those come from the kernel, a file or a pipe.
//! It knows no view: each view reads its model (and `views::snapshot` caches the report
//! document built from it).
use std::collections::VecDeque;

use crate::{
    model::event::Event,
    model::Model,
    recording::{Header, Summary},
};

/// Events kept for an event log (`top`): enough to scroll back through, bounded for a long run.
pub const RECENT_EVENTS: usize = 2000;

/// Why a source failed, typed where the command's exit status depends on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Live tracing could not attach a single probe (no privileges, lockdown, no BTF...).
    NothingAttached,
    Other,
}

impl Failure {
    pub fn other(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Other,
            message: message.into(),
        }
    }
}

/// What a source hands on: the lines of a recording, then how it ended.
#[derive(Debug, Clone)]
pub enum Update {
    Header(Box<Header>),
    Event(Event),
    /// Events that arrived together (one drain of the kernel's ring buffer), handed over at
    /// once: the view then wakes and writes once per drain instead of once per event.
    Events(Vec<Event>),
    Summary(Box<Summary>),
    /// The source stopped without a summary: why (a bad file, a probe load failure...).
    Failed(Failure),
    /// The recording ends without its summary (cut short: the recorder was killed, the disk
    /// filled): the warning to show. Everything before it was handed on.
    Truncated(String),
}

/// The model of one stream and what is known about its source.
pub struct Stream {
    /// "live", a file name or "stdin".
    pub origin: String,
    pub header: Option<Header>,
    /// Built when the header arrives: the layout and probes come from it.
    pub model: Option<Model>,
    pub summary: Option<Summary>,
    pub failure: Option<Failure>,
    /// The recording ended without its summary: the warning (see `Update::Truncated`).
    pub truncated: Option<String>,
    /// Time of the last event seen (CLOCK_MONOTONIC of the traced host).
    pub last_ts_ns: u64,
    /// The latest events applied, oldest first (at most `RECENT_EVENTS`).
    pub recent: VecDeque<Event>,
    /// How many entries of each history the model keeps (`--keep`).
    pub keep: usize,
    /// Updates applied so far: a view caching what it built from the stream rebuilds it only
    /// when this moved.
    generation: u64,
}

impl Stream {
    pub fn new(origin: impl Into<String>) -> Stream {
        Stream {
            origin: origin.into(),
            header: None,
            model: None,
            summary: None,
            failure: None,
            truncated: None,
            last_ts_ns: 0,
            recent: VecDeque::new(),
            keep: crate::model::DEFAULT_KEEP,
            generation: 0,
        }
    }

    /// Entries of each history the model keeps; 0 keeps everything.
    pub fn with_keep(mut self, keep: usize) -> Stream {
        self.keep = keep;
        self
    }

    /// Updates applied so far.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn apply(&mut self, update: Update) {
        self.generation += 1;
        match update {
            Update::Header(h) => {
                let mut model = Model::new(h.layout.clone());
                model.set_keep(self.keep);
                model.set_probes(&h.probes);
                model.apply_frame(&h.frame);
                self.last_ts_ns = h.clock.monotonic_ns;
                self.model = Some(model);
                self.header = Some(*h);
            }
            Update::Event(ev) => self.apply_event(ev),
            Update::Events(evs) => evs.into_iter().for_each(|ev| self.apply_event(ev)),
            Update::Summary(s) => {
                if let Some(m) = &mut self.model {
                    m.set_lost_events(s.lost_events);
                    if let Some(end) = &s.frame {
                        m.apply_final_frame(end);
                    }
                }
                self.summary = Some(*s);
            }
            Update::Failed(f) => self.failure = Some(f),
            Update::Truncated(why) => self.truncated = Some(why),
        }
    }

    fn apply_event(&mut self, ev: Event) {
        if let Some(m) = &mut self.model {
            self.last_ts_ns = self.last_ts_ns.max(ev.ts_ns);
            m.ingest(&ev);
            if self.recent.len() == RECENT_EVENTS {
                self.recent.pop_front();
            }
            self.recent.push_back(ev);
        }
    }

    /// The source has nothing more to give.
    pub fn ended(&self) -> bool {
        self.summary.is_some() || self.failure.is_some() || self.truncated.is_some()
    }

    /// How the stream ended, for a status line; None while it runs.
    pub fn end_reason(&self) -> Option<String> {
        match (&self.summary, &self.failure, &self.truncated) {
            (Some(s), _, _) => Some(format!("ended: {}", s.end_reason)),
            (None, Some(f), _) => Some(format!("failed: {f}")),
            (None, None, Some(_)) => Some("ended: cut short (no summary)".into()),
            (None, None, None) => None,
        }
    }

    /// Tracing time covered so far: the summary's duration, or up to the last event.
    pub fn duration_ns(&self) -> u64 {
        match (&self.summary, &self.header) {
            (Some(s), _) => s.duration_ns,
            (None, Some(h)) => self.last_ts_ns.saturating_sub(h.clock.monotonic_ns),
            (None, None) => 0,
        }
    }
}
