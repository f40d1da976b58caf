//! The two status lines: where the data comes from and how much of it there is; then the
//! replay, the node filter (or its prompt) and how the stream ended.
use std::path::Path;

use ratatui::{
    style::{Color, Modifier, Style},
    text::{Line, Span},
};

use super::{
    app::App,
    fmt::{short_ns, since},
    panes::styled,
};
use crate::recording::stream::Stream;

/// The replay as the status line shows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Replay {
    /// Tracing the running kernel (not paced either).
    pub live: bool,
    /// Replay speed; None for live and followed inputs, which are not paced.
    pub speed: Option<f64>,
    pub paused: bool,
    /// The replay clock (CLOCK_MONOTONIC of the recording), once started.
    pub position_ns: Option<u64>,
    /// Everything the source sent has been applied.
    pub drained: bool,
}

const SEP: &str = " │ ";

pub fn lines(app: &App, stream: &Stream, replay: &Replay) -> [Line<'static>; 2] {
    [source_line(stream), state_line(app, stream, replay)]
}

/// Why the source failed, in full: it gets lines of its own (wrapped) under the status.
pub fn failure(stream: &Stream) -> Option<Line<'static>> {
    let why = stream.failure.as_ref()?;
    Some(
        styled(
            format!("failed: {why}"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )
        .into(),
    )
}

fn source_line(stream: &Stream) -> Line<'static> {
    // A file's name says enough; its directory would push the counts off a narrow screen.
    let origin = Path::new(&stream.origin)
        .file_name()
        .map_or(stream.origin.clone(), |f| f.to_string_lossy().into_owned());
    let kernel = stream
        .header
        .as_ref()
        .map_or("?".to_string(), |h| h.host.kernel_release.clone());
    let (events, lost) = stream
        .model
        .as_ref()
        .map_or((0, 0), |m| (m.events, m.lost_events));
    // Kernel last: on a narrow screen it is what gets cut, not the counts.
    let mut spans = vec![
        styled(origin, Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("{SEP}{events} events{SEP}")),
    ];
    if lost > 0 {
        spans.push(styled(
            format!(" LOST {lost} events "),
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    } else {
        spans.push(Span::raw("0 lost"));
    }
    spans.push(Span::raw(format!(
        "{SEP}{} traced{SEP}kernel {kernel}",
        short_ns(stream.duration_ns())
    )));
    Line::from(spans)
}

fn state_line(app: &App, stream: &Stream, replay: &Replay) -> Line<'static> {
    if let Some(text) = &app.prompt {
        let mut spans = vec![
            styled(
                "filter nodes (1 or 1,2; Enter applies, Esc cancels, empty clears): ",
                Style::new().fg(Color::Yellow),
            ),
            styled(format!("{text}_"), Style::new().add_modifier(Modifier::BOLD)),
        ];
        if let Some(e) = &app.prompt_error {
            spans.push(styled(format!("  {e}"), Style::new().fg(Color::Red)));
        }
        return Line::from(spans);
    }
    let start_ns = stream.header.as_ref().map_or(0, |h| h.clock.monotonic_ns);
    let mut spans = vec![replay_span(replay, stream.ended(), start_ns), Span::raw(SEP)];
    let filter = if app.filter.is_some() {
        styled(
            format!("nodes {}", app.filter_text()),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )
    } else {
        Span::raw("nodes all")
    };
    spans.push(filter);
    // A failure is on lines of its own.
    if let (Some(end), None) = (stream.end_reason(), &stream.failure) {
        spans.push(Span::raw(SEP));
        spans.push(styled(end, Style::new().add_modifier(Modifier::BOLD)));
    }
    spans.push(styled(
        format!("{SEP}? help  q quit"),
        Style::new().fg(Color::DarkGray),
    ));
    Line::from(spans)
}

fn replay_span(replay: &Replay, ended: bool, start_ns: u64) -> Span<'static> {
    let Some(speed) = replay.speed else {
        let what = match (replay.live, ended) {
            (true, false) => "live",
            (false, false) => "following",
            (_, true) => "source done",
        };
        return Span::raw(what);
    };
    let position = replay.position_ns.map_or("-".into(), |p| since(p, start_ns));
    let state = if replay.drained {
        "done"
    } else if replay.paused {
        "PAUSED"
    } else {
        "playing"
    };
    let text = format!("replay {position} x{} {state}", speed_text(speed));
    if replay.paused && !replay.drained {
        styled(text, Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD))
    } else {
        Span::raw(text)
    }
}

/// "8", "0.5", "0.125": the shortest exact decimal for a power of two.
fn speed_text(speed: f64) -> String {
    let s = format!("{speed:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Layout, Model};

    fn stream_with_model() -> Stream {
        let mut stream = Stream::new("/some/dir/rec.ndjson");
        stream.model = Some(Model::new(Layout {
            zone_names: vec!["Normal".into()],
            page_size: 4096,
            struct_page_size: 64,
            block_size_bytes: 128 << 20,
            page_flags: None,
            features: Default::default(),
        }));
        stream
    }

    #[test]
    fn lost_events_stand_out() {
        let mut stream = stream_with_model();
        let line = source_line(&stream).to_string();
        assert!(line.starts_with("rec.ndjson │ 0 events │ 0 lost"), "{line}");
        stream.model.as_mut().unwrap().set_lost_events(5);
        let line = source_line(&stream);
        let lost = line
            .spans
            .iter()
            .find(|s| s.content.contains("LOST 5 events"))
            .unwrap();
        assert_eq!(lost.style.bg, Some(Color::Red));
    }

    #[test]
    fn the_state_line_tells_the_replay_the_filter_and_the_end() {
        let mut stream = stream_with_model();
        let mut app = App::new();
        let replay = Replay {
            speed: Some(4.0),
            paused: true,
            ..Replay::default()
        };
        let line = state_line(&app, &stream, &replay).to_string();
        assert!(
            line.starts_with("replay - x4 PAUSED │ nodes all │ ? help"),
            "{line}"
        );

        app.filter = Some([1, 2].into());
        stream.failure = Some(crate::recording::stream::Failure::other("the file vanished"));
        let line = state_line(&app, &stream, &Replay::default()).to_string();
        assert!(line.starts_with("source done │ nodes 1,2 │ ? help"), "{line}");
        assert!(!line.contains("failed"), "a failure has lines of its own: {line}");
        assert_eq!(failure(&stream).unwrap().to_string(), "failed: the file vanished");

        app.prompt = Some("3".into());
        app.prompt_error = Some("no".into());
        let line = state_line(&app, &stream, &Replay::default()).to_string();
        assert!(
            line.starts_with("filter nodes") && line.contains("3_  no"),
            "{line}"
        );
    }

    #[test]
    fn speeds_read_plainly() {
        assert_eq!(speed_text(8.0), "8");
        assert_eq!(speed_text(0.5), "0.5");
        assert_eq!(speed_text(0.125), "0.125");
        assert_eq!(speed_text(1.0), "1");
    }
}
