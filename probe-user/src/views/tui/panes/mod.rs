//! What each pane shows, as lines of text: the panes know the data, `ui` knows the frame
//! around them (borders, focus, scrolling).
pub mod blocks;
pub mod events;
pub mod nodes;
pub mod probes;
pub mod zones;

use ratatui::{style::Style, text::Line, text::Span};

use super::app::App;
use crate::{model::Model, recording::stream::Stream, views::report::Document};

/// Everything a pane may read for one redraw.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub stream: &'a Stream,
    /// Built once per redraw; None before the recording's header.
    pub doc: Option<&'a Document>,
}

impl Ctx<'_> {
    pub fn model(&self) -> Option<&Model> {
        self.stream.model.as_ref()
    }

    /// CLOCK_MONOTONIC at the start of the stream: event times are shown relative to it.
    pub fn start_ns(&self) -> u64 {
        self.stream.header.as_ref().map_or(0, |h| h.clock.monotonic_ns)
    }

    pub fn shows(&self, node: Option<i32>) -> bool {
        self.app.shows_node(node)
    }
}

/// A pane's content.
#[derive(Default)]
pub struct Body {
    /// Short facts put after the pane's name in its title.
    pub note: String,
    /// A fixed line above the rows (column names).
    pub header: Option<Line<'static>>,
    /// What scrolls.
    pub rows: Vec<Line<'static>>,
    /// Fixed lines below the rows (a legend).
    pub footer: Vec<Line<'static>>,
}

impl Body {
    pub fn waiting() -> Body {
        Body {
            rows: vec![Line::from("waiting for the source...")],
            ..Body::default()
        }
    }
}

/// Packs labelled items into lines no wider than `width`, two spaces apart.
pub fn pack(items: Vec<Vec<Span<'static>>>, width: usize) -> Vec<Line<'static>> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut current: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for item in items {
        let w: usize = item.iter().map(|s| s.width()).sum();
        if used > 0 && used + 2 + w > width {
            lines.push(Line::from(std::mem::take(&mut current)));
            used = 0;
        }
        if used > 0 {
            current.push(Span::raw("  "));
            used += 2;
        }
        used += w;
        current.extend(item);
    }
    if !current.is_empty() {
        lines.push(Line::from(current));
    }
    lines
}

/// One styled span, for building lines tersely.
pub fn styled(text: impl Into<String>, style: Style) -> Span<'static> {
    Span::styled(text.into(), style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_wraps_items_whole() {
        let item = |s: &str| vec![Span::raw(s.to_string())];
        let lines = pack(vec![item("aaa"), item("bb"), item("cccc"), item("d")], 9);
        let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(text, ["aaa  bb", "cccc  d"]);
        assert!(pack(Vec::new(), 10).is_empty());
    }
}
