//! The screen: status lines on top, the five panes below, the help on top of them. Reads the
//! stream and one Document per redraw; the only state it writes is each pane's scroll bounds.
use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Block, Clear, Paragraph, Wrap},
    Frame,
};

use super::{
    app::{App, Pane},
    panes::{self, Body, Ctx},
    status::{self, Replay},
};
use crate::recording::stream::Stream;

/// Below this the panes would be unreadable: a message says so instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 20;
/// Lines a failure message may take under the status lines.
const MAX_FAILURE_LINES: u16 = 3;
/// The smallest height of the top two bands (borders, a header and a few rows).
const BAND: u16 = 7;

const HELP: &[&str] = &[
    "Tab, Shift-Tab    focus the next, the previous pane",
    "Up, Down          scroll the focused pane by a line",
    "PgUp, PgDn        scroll it by a page",
    "Home, End         scroll it to the top, the bottom",
    "/                 only these nodes: 1 or 1,2 (empty: all)",
    "space             pause or resume the replay",
    "n                 step the replay by one event (pauses)",
    "+, -              replay twice as fast, half as fast",
    "?                 this help",
    "q, Esc, Ctrl-C    quit",
    "",
    "Block map: an online block's zone letter (O: unknown),",
    "  o offline, x removed, ? unknown; then its memmap:",
    "  * self-hosted, + in earlier memory, · unknown",
    "Zones: chg = span changes/contiguity changes;",
    "  find = span-check findings (listed below the zones)",
];

pub fn draw(frame: &mut Frame, app: &mut App, stream: &Stream, replay: &Replay) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let failure = status::failure(stream);
    let failure_height = failure.as_ref().map_or(0, |l| {
        (l.width() as u16).div_ceil(area.width).min(MAX_FAILURE_LINES)
    });
    let doc = app.snapshots.get(stream);
    let answers = doc
        .as_ref()
        .map_or_else(Vec::new, |d| answer_lines(d, area.width as usize));
    let [status_area, failure_area, answers_area, panes_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(failure_height),
        Constraint::Length(answers.len() as u16),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(answers), answers_area);
    frame.render_widget(
        Paragraph::new(status::lines(app, stream, replay).to_vec()),
        status_area,
    );
    if let Some(line) = failure {
        frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), failure_area);
    }

    let bodies: Vec<(Pane, Rect, Body)> = {
        let ctx = Ctx {
            app,
            stream,
            doc: doc.as_deref(),
        };
        pane_areas(panes_area)
            .into_iter()
            .map(|(pane, rect)| {
                let width = rect.width.saturating_sub(2) as usize;
                let body = match pane {
                    Pane::Nodes => panes::nodes::body(&ctx, width),
                    Pane::Blocks => panes::blocks::body(&ctx, width),
                    Pane::Zones => panes::zones::body(&ctx),
                    Pane::Events => panes::events::body(&ctx),
                    Pane::Probes => panes::probes::body(&ctx, width),
                };
                (pane, rect, body)
            })
            .collect()
    };
    for (pane, rect, body) in bodies {
        render_pane(frame, app, pane, rect, body);
    }
    if app.help {
        help(frame, area);
    }
    if app.no_color {
        strip_colors(frame.buffer_mut());
    }
}

/// Every cell back to the terminal's own colours; modifiers (bold, reverse) stay.
fn strip_colors(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        cell.set_fg(Color::Reset).set_bg(Color::Reset);
    }
}

/// Findings shown above the panes, the most important first.
const MAX_ANSWER_LINES: usize = 3;

/// The answers that need attention (failed attempts, blocks left offline, headroom), one line
/// each, above the panes; nothing when there are none.
fn answer_lines(doc: &crate::views::report::Document, width: usize) -> Vec<Line<'static>> {
    // Findings first, then the configuration that commonly surprises (memory left offline,
    // memmap taken from existing memory).
    let all: Vec<String> = doc
        .answers
        .answers
        .iter()
        .map(|a| a.message.clone())
        .chain(
            doc.answers
                .config
                .iter()
                .filter(|c| c.warn)
                .map(|c| format!("config: {}", c.consequence)),
        )
        .collect();
    let style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    let mut lines: Vec<Line> = all
        .iter()
        .take(MAX_ANSWER_LINES)
        .map(|a| {
            let text: String = format!("! {a}").chars().take(width).collect();
            Line::styled(text, style)
        })
        .collect();
    if all.len() > MAX_ANSWER_LINES {
        if let Some(last) = lines.last_mut() {
            let more = format!("  (+{} more: mhpscope report)", all.len() - MAX_ANSWER_LINES + 1);
            let text: String = format!("! {}", all[MAX_ANSWER_LINES - 1])
                .chars()
                .take(width.saturating_sub(more.chars().count()))
                .collect();
            *last = Line::styled(format!("{text}{more}"), style);
        }
    }
    lines
}

/// Nodes and block map side by side, zones across, events and probes side by side. The left
/// column gets the wider share: its rows are longer.
fn pane_areas(area: Rect) -> [(Pane, Rect); 5] {
    let band = (area.height * 3 / 10).max(BAND);
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(band),
        Constraint::Length(band),
        Constraint::Fill(1),
    ])
    .areas(area);
    let split = |r: Rect| -> [Rect; 2] {
        Layout::horizontal([Constraint::Percentage(62), Constraint::Fill(1)]).areas(r)
    };
    let [nodes, blocks] = split(top);
    let [events, probes] = split(bottom);
    [
        (Pane::Nodes, nodes),
        (Pane::Blocks, blocks),
        (Pane::Zones, middle),
        (Pane::Events, events),
        (Pane::Probes, probes),
    ]
}

fn render_pane(frame: &mut Frame, app: &mut App, pane: Pane, area: Rect, body: Body) {
    let focused = app.focus == pane;
    let inner = Block::bordered().inner(area);
    let header_height = u16::from(body.header.is_some()).min(inner.height);
    // Rows keep at least one line: a legend must not hide what it explains.
    let footer_height = (body.footer.len() as u16).min(inner.height.saturating_sub(header_height + 1));
    let [header_area, rows_area, footer_area] = Layout::vertical([
        Constraint::Length(header_height),
        Constraint::Fill(1),
        Constraint::Length(footer_height),
    ])
    .areas(inner);

    let scroll = app.scroll_mut(pane);
    scroll.fit(body.rows.len(), rows_area.height as usize);
    let (offset, rows, visible) = (scroll.offset, scroll.rows, scroll.visible);

    // The focus shows in plain text too: a marker, not only a colour.
    let name = if focused {
        format!("▶ {}", pane.title())
    } else {
        pane.title().to_string()
    };
    let title = if body.note.is_empty() {
        format!(" {name} ")
    } else {
        format!(" {name} · {} ", body.note)
    };
    let (border, title_style) = if focused {
        (
            Style::new().fg(Color::Cyan),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        )
    } else {
        (
            Style::new().fg(Color::DarkGray),
            Style::new().add_modifier(Modifier::BOLD),
        )
    };
    let mut block = Block::bordered()
        .border_style(border)
        .title(Line::styled(title, title_style));
    if rows > visible {
        let last = (offset + visible).min(rows);
        block = block.title_bottom(Line::from(format!(" {}-{last} of {rows} ", offset + 1)).right_aligned());
    }
    frame.render_widget(block, area);
    if let Some(header) = body.header {
        frame.render_widget(Paragraph::new(header), header_area);
    }
    let shown: Vec<Line> = body.rows.into_iter().skip(offset).take(visible).collect();
    frame.render_widget(Paragraph::new(shown), rows_area);
    frame.render_widget(Paragraph::new(body.footer), footer_area);
}

fn too_small(frame: &mut Frame, area: Rect) {
    let text = format!(
        "terminal too small ({}x{}): mhpscope top needs {MIN_WIDTH}x{MIN_HEIGHT}; q quits",
        area.width, area.height
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

fn help(frame: &mut Frame, area: Rect) {
    let width = (HELP.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u16 + 4).min(area.width);
    let height = (HELP.len() as u16 + 2).min(area.height);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = HELP.iter().map(|l| Line::from(format!(" {l}"))).collect();
    let block = Block::bordered()
        .border_style(Style::new().fg(Color::Yellow))
        .title(Line::styled(
            " Help · ? or Esc closes ",
            Style::new().add_modifier(Modifier::BOLD),
        ));
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ratatui::{backend::TestBackend, Terminal};

    use super::*;
    use crate::{
        recording::stream::Update,
        recording::{Item, Reader},
    };

    /// A recording from the tests' data, applied whole.
    fn stream_of(name: &str) -> Stream {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        let mut reader = Reader::open(&path).unwrap();
        let mut stream = Stream::new(path.display().to_string());
        stream.apply(Update::Header(Box::new(reader.header().unwrap())));
        while let Some(item) = reader.next_item().unwrap() {
            stream.apply(match item {
                Item::Event(ev) => Update::Event(ev),
                Item::Summary(s) => Update::Summary(Box::new(s)),
            });
        }
        stream
    }

    fn screen(app: &mut App, stream: &Stream, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|f| ui_draw(f, app, stream))
            .expect("drawing on a test backend");
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| (0..width).map(|x| buffer[(x, y)].symbol()).collect::<String>() + "\n")
            .collect()
    }

    fn ui_draw(frame: &mut Frame, app: &mut App, stream: &Stream) {
        let replay = Replay {
            speed: Some(1.0),
            drained: true,
            ..Replay::default()
        };
        draw(frame, app, stream, &replay)
    }

    /// The whole screen of each fixture replayed to its end, at the smallest usable size and a
    /// common larger one; a change to any pane shows as a diff to review (`cargo insta review`).
    #[test]
    fn screens_of_the_fixtures() {
        for fixture in [
            "hotplug-6.1.ndjson",
            "offnode-6.12.ndjson",
            "devdax-7.2.ndjson",
            "failures-6.12.ndjson",
            "reporting-7.2.ndjson",
        ] {
            let mut stream = stream_of(fixture);
            // The origin as a name, not a path: the snapshot must not depend on the checkout.
            stream.origin = fixture.to_string();
            for (w, h) in [(80, 24), (120, 40)] {
                let text = screen(&mut App::new(), &stream, w, h);
                insta::assert_snapshot!(format!("{fixture}-{w}x{h}"), text);
            }
        }
    }

    #[test]
    fn every_pane_and_the_status_fit_80x24() {
        let stream = stream_of("hotplug-6.1.ndjson");
        let text = screen(&mut App::new(), &stream, 80, 24);
        for title in ["▶ Nodes", "Block map", "Zones", "Events", "Probes"] {
            assert!(text.contains(title), "{title} missing:\n{text}");
        }
        assert!(text.contains("hotplug-6.1.ndjson"), "{text}");
        assert!(
            text.contains("37 events") && text.contains("ended: SIGINT"),
            "{text}"
        );
        assert_eq!(text.matches('▶').count(), 1, "one pane has the focus");
    }

    #[test]
    fn the_filter_hides_other_nodes_everywhere() {
        let stream = stream_of("offnode-6.12.ndjson");
        let mut app = App::new();
        let all = screen(&mut app, &stream, 120, 40);
        assert!(all.contains("│0 RAM") && all.contains("│2 RAM") && all.contains("n2 Movable"));
        app.filter = Some([1].into());
        let one = screen(&mut app, &stream, 120, 40);
        assert!(one.contains("│1 RAM") && one.contains("1 Movable"), "{one}");
        assert!(!one.contains("│0 RAM") && !one.contains("│0 DMA"), "{one}");
        assert!(!one.contains("│2 RAM") && !one.contains("│2 Movable"), "{one}");
        assert!(
            !one.contains(" n2 ") && !one.contains(" n0 "),
            "events of other nodes:\n{one}"
        );
        assert!(one.contains("nodes 1"), "the status line says so");
    }

    #[test]
    fn zone_device_memmap_inits_get_their_own_row() {
        let stream = stream_of("devdax-7.2.ndjson");
        let text = screen(&mut App::new(), &stream, 80, 24);
        assert!(text.contains("│1 dev"), "{text}");
        let hotplug = screen(&mut App::new(), &stream_of("hotplug-6.1.ndjson"), 80, 24);
        assert!(!hotplug.contains(" dev "), "{hotplug}");
    }

    #[test]
    fn scroll_bounds_come_from_what_was_drawn() {
        let stream = stream_of("hotplug-6.1.ndjson");
        let mut app = App::new();
        screen(&mut app, &stream, 80, 24);
        let events = *app.scroll_mut(Pane::Events);
        assert_eq!(events.rows, 37, "one row per event");
        assert!(events.visible > 0 && events.visible < 37);
        app.scroll_mut(Pane::Events).offset = 1000;
        let text = screen(&mut app, &stream, 80, 24);
        assert_eq!(app.scroll_mut(Pane::Events).offset, 37 - events.visible);
        assert!(text.contains("of 37"), "{text}");
    }

    #[test]
    fn no_color_draws_the_same_text_without_colours() {
        let stream = stream_of("hotplug-6.1.ndjson");
        let draw = |no_color: bool| {
            let mut app = App {
                no_color,
                ..App::new()
            };
            let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
            terminal.draw(|f| ui_draw(f, &mut app, &stream)).unwrap();
            terminal.backend().buffer().clone()
        };
        let (coloured, plain) = (draw(false), draw(true));
        let colours = |b: &ratatui::buffer::Buffer| {
            b.content
                .iter()
                .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
                .count()
        };
        assert!(colours(&coloured) > 0, "the default draws colours");
        assert_eq!(colours(&plain), 0);
        let text = |b: &ratatui::buffer::Buffer| {
            b.content
                .iter()
                .map(|c| c.symbol().to_string())
                .collect::<String>()
        };
        assert_eq!(text(&coloured), text(&plain));
    }

    #[test]
    fn help_lists_the_keys_over_the_panes() {
        let stream = stream_of("hotplug-6.1.ndjson");
        let mut app = App {
            help: true,
            ..App::new()
        };
        let text = screen(&mut app, &stream, 80, 24);
        for key in [
            "Tab, Shift-Tab",
            "PgUp, PgDn",
            "Home, End",
            "space",
            "+, -",
            "q, Esc, Ctrl-C",
        ] {
            assert!(text.contains(key), "{key} missing:\n{text}");
        }
    }

    #[test]
    fn any_size_draws_without_panicking() {
        let stream = stream_of("devdax-7.2.ndjson");
        for (w, h) in [
            (0, 0),
            (1, 1),
            (10, 3),
            (59, 30),
            (100, 19),
            (60, 20),
            (80, 24),
            (250, 80),
        ] {
            for help in [false, true] {
                let mut app = App {
                    help,
                    prompt: Some("1,2".into()),
                    ..App::new()
                };
                let text = screen(&mut app, &stream, w, h);
                if w >= 40 && h >= 3 && (w < MIN_WIDTH || h < MIN_HEIGHT) {
                    assert!(text.contains("terminal too small"), "{w}x{h}:\n{text}");
                }
            }
        }
        // Before the header: nothing to show yet, but nothing breaks either.
        let text = screen(&mut App::new(), &Stream::new("stdin"), 80, 24);
        assert!(text.contains("waiting for the source"), "{text}");
    }
}
