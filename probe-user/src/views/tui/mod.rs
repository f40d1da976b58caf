//! `mhpscope top`: the model of one stream in the terminal, redrawn as events arrive. Nodes,
//! block map, zones, events and probes; a recording is replayed at its own pace.
//!
//! A view like the others: it reads the stream, its model and the report's document, and
//! never talks to the kernel. `app` holds the view's state and the keys, `ui` draws, `panes`
//! say what each pane shows, `status` the status lines.
mod app;
mod fmt;
mod panes;
mod signals;
mod status;
mod ui;

use std::{
    sync::mpsc::{RecvError, RecvTimeoutError},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use ratatui::{
    crossterm::event::{self, Event, KeyEventKind},
    DefaultTerminal,
};

use self::{
    app::{Action, App},
    status::Replay,
};
use crate::{
    kernel::loader::Options,
    recording::replay::Player,
    recording::source::{self, Feed, Input},
    recording::stream::{Stream, Update},
    views::ViewOptions,
};

/// How long to wait for a key before looking at the source again: events reach the screen
/// at most this late.
const POLL: Duration = Duration::from_millis(100);
/// Redraw at least this often, so that the clocks in the status line move.
const REDRAW: Duration = Duration::from_secs(1);
/// Bounds of the replay speed that + and - reach.
const SPEEDS: (f64, f64) = (1.0 / 1024.0, 1024.0 * 1024.0);

pub fn run(opts: &Options, input: Input, speed: f64, view: ViewOptions) -> Result<()> {
    if !(speed.is_finite() && speed > 0.0) {
        bail!("--speed must be a positive number, not {speed}");
    }
    let live = input.is_live();
    let player = Player::new(input.is_replay().then_some(speed));
    let mut stream = Stream::new(input.origin()).with_keep(view.keep);
    let feed = source::spawn(input, opts);
    // The terminal is left alone until the source has shown that it works: a failure (no
    // privileges, no probe attached, a bad file) is then an ordinary error message.
    // A followed file may stay empty for a while (lab --top: until the guest's recorder starts).
    let first = match feed.rx.recv_timeout(Duration::from_secs(1)) {
        Err(RecvTimeoutError::Timeout) => {
            eprintln!("mhpscope: waiting for the first line of {}...", stream.origin);
            feed.rx.recv()
        }
        other => other.map_err(|_| RecvError),
    };
    match first {
        Ok(Update::Failed(f)) => return Err(f.into()),
        Ok(first) => stream.apply(first),
        Err(_) => bail!("the source ended before sending anything"),
    }
    if !live {
        signals::install();
    }
    let result =
        with_terminal(|terminal| event_loop(terminal, &feed, &mut stream, player, live, view.thresholds));
    feed.stop();
    result
}

/// Runs `f` in raw mode on the alternate screen, and restores the terminal however `f` ends:
/// returning, failing or panicking (ratatui's panic hook restores it before the message).
fn with_terminal<T>(f: impl FnOnce(&mut DefaultTerminal) -> Result<T>) -> Result<T> {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            ratatui::restore();
        }
    }
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            // Raw mode may have been entered before the failure; nothing else was.
            let _ = ratatui::crossterm::terminal::disable_raw_mode();
            return Err(e).context("mhpscope top needs a terminal");
        }
    };
    let _restore = Restore;
    f(&mut terminal)
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    feed: &Feed,
    stream: &mut Stream,
    mut player: Player,
    live: bool,
    thresholds: crate::views::answers::Thresholds,
) -> Result<()> {
    let mut app = App::new();
    app.snapshots = crate::views::snapshot::Snapshots::new(thresholds);
    // https://no-color.org: a non-empty NO_COLOR turns colours off.
    app.no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mut changed = true;
    let mut drawn: Option<Instant> = None;
    loop {
        let now = Instant::now();
        changed |= player.pump(&feed.rx, stream, now) > 0;
        if signals::received() || (live && stopped_by_signal(stream)) {
            return Ok(());
        }
        if changed || drawn.is_none_or(|t| now.duration_since(t) >= REDRAW) {
            let replay = Replay {
                live,
                speed: player.speed(),
                paused: player.paused(),
                // The replay clock runs on after the last event; the last event is where it ended.
                position_ns: if player.drained() {
                    Some(stream.last_ts_ns)
                } else {
                    player.position_ns(now)
                },
                drained: player.drained(),
            };
            terminal.draw(|frame| ui::draw(frame, &mut app, stream, &replay))?;
            drawn = Some(now);
            changed = false;
        }
        if !event::poll(POLL)? {
            continue;
        }
        match event::read()? {
            Event::Key(key) if key.kind == KeyEventKind::Press => {
                changed = true;
                let now = Instant::now();
                match app.on_key(key) {
                    Action::Quit => return Ok(()),
                    Action::None => {}
                    // Live and followed inputs are not paced: there is nothing to pause.
                    _ if !player.paced() => {}
                    Action::TogglePause => player.toggle_pause(now),
                    Action::Step => {
                        if !player.paused() {
                            player.toggle_pause(now);
                        }
                        player.step(&feed.rx, stream, now);
                    }
                    Action::Speed(factor) => {
                        let speed = player.speed().unwrap_or(1.0) * factor;
                        player.set_speed(speed.clamp(SPEEDS.0, SPEEDS.1), now);
                    }
                }
            }
            Event::Resize(..) => changed = true,
            _ => {}
        }
    }
}

/// Live tracing ended because someone sent us SIGINT or SIGTERM: the user wants `top` gone.
/// (A recording's summary says the same of the recorder, which is no reason to quit a replay.)
fn stopped_by_signal(stream: &Stream) -> bool {
    stream.summary.as_ref().is_some_and(|s| s.end_reason.is_signal())
}
