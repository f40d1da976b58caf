//! The state of the view and what each key does to it. Pure: no terminal, no stream; keys that
//! act on the replay come back as an `Action` for the loop to carry out.
use std::collections::BTreeSet;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The panes, in focus order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Nodes,
    Blocks,
    Zones,
    Events,
    Probes,
}

impl Pane {
    pub const ALL: [Pane; 5] = [Pane::Nodes, Pane::Blocks, Pane::Zones, Pane::Events, Pane::Probes];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Nodes => "Nodes",
            Pane::Blocks => "Block map",
            Pane::Zones => "Zones",
            Pane::Events => "Events",
            Pane::Probes => "Probes",
        }
    }

    fn index(self) -> usize {
        Pane::ALL.iter().position(|&p| p == self).unwrap_or(0)
    }
}

/// What the loop has to do after a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    None,
    Quit,
    TogglePause,
    /// Apply the next event (pausing first).
    Step,
    /// Multiply the replay speed by this factor.
    Speed(f64),
}

/// How far a pane is scrolled, and how much it had to show at the last redraw (the bounds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scroll {
    pub offset: usize,
    /// Rows of content and rows visible, as last rendered.
    pub rows: usize,
    pub visible: usize,
}

impl Scroll {
    pub fn max_offset(&self) -> usize {
        self.rows.saturating_sub(self.visible)
    }

    /// Records what a redraw had to show and keeps the offset within it (content can shrink:
    /// a filter, a smaller terminal).
    pub fn fit(&mut self, rows: usize, visible: usize) {
        self.rows = rows;
        self.visible = visible;
        self.offset = self.offset.min(self.max_offset());
    }

    fn by(&mut self, delta: isize) {
        self.offset = self.offset.saturating_add_signed(delta).min(self.max_offset());
    }

    fn page(&self) -> isize {
        self.visible.max(1) as isize
    }
}

pub struct App {
    pub focus: Pane,
    pub scroll: [Scroll; 5],
    /// Only these nodes are shown; None shows all.
    pub filter: Option<BTreeSet<i32>>,
    /// The node filter being typed, while the prompt is open.
    pub prompt: Option<String>,
    /// Why the typed filter was refused.
    pub prompt_error: Option<String>,
    pub help: bool,
    /// Draw without colours (NO_COLOR is set): bold and reverse still mark focus and alarms.
    pub no_color: bool,
    /// The report document the panes read, rebuilt only after the stream changed.
    pub snapshots: crate::views::snapshot::Snapshots,
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    pub fn new() -> App {
        App {
            focus: Pane::Nodes,
            scroll: [Scroll::default(); 5],
            filter: None,
            prompt: None,
            prompt_error: None,
            no_color: false,
            help: false,
            snapshots: Default::default(),
        }
    }

    pub fn scroll_mut(&mut self, pane: Pane) -> &mut Scroll {
        &mut self.scroll[pane.index()]
    }

    /// Whether `node` passes the filter; things of no known node pass only without one.
    pub fn shows_node(&self, node: Option<i32>) -> bool {
        match (&self.filter, node) {
            (None, _) => true,
            (Some(set), Some(n)) => set.contains(&n),
            (Some(_), None) => false,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.prompt.is_some() {
            self.prompt_key(key.code);
            return Action::None;
        }
        if self.help {
            // Modal: only closing it or quitting does anything.
            match key.code {
                KeyCode::Char('?') | KeyCode::Esc => self.help = false,
                KeyCode::Char('q') => return Action::Quit,
                _ => {}
            }
            return Action::None;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char('/') => {
                // Empty: Enter alone clears the filter (the one in force is in the status line).
                self.prompt = Some(String::new());
                self.prompt_error = None;
            }
            KeyCode::Tab => self.focus = Pane::ALL[(self.focus.index() + 1) % Pane::ALL.len()],
            KeyCode::BackTab => {
                self.focus = Pane::ALL[(self.focus.index() + Pane::ALL.len() - 1) % Pane::ALL.len()]
            }
            KeyCode::Up => self.scroll_mut(self.focus).by(-1),
            KeyCode::Down => self.scroll_mut(self.focus).by(1),
            KeyCode::PageUp => {
                let s = self.scroll_mut(self.focus);
                s.by(-s.page())
            }
            KeyCode::PageDown => {
                let s = self.scroll_mut(self.focus);
                s.by(s.page())
            }
            KeyCode::Home => self.scroll_mut(self.focus).offset = 0,
            KeyCode::End => {
                let s = self.scroll_mut(self.focus);
                s.offset = s.max_offset()
            }
            KeyCode::Char(' ') => return Action::TogglePause,
            KeyCode::Char('n') => return Action::Step,
            KeyCode::Char('+') | KeyCode::Char('=') => return Action::Speed(2.0),
            KeyCode::Char('-') => return Action::Speed(0.5),
            _ => {}
        }
        Action::None
    }

    fn prompt_key(&mut self, code: KeyCode) {
        let Some(text) = &mut self.prompt else { return };
        match code {
            KeyCode::Esc => self.prompt = None,
            KeyCode::Enter => match parse_nodes(text) {
                Ok(filter) => {
                    self.filter = filter;
                    self.prompt = None;
                    // Rows above the new first one would hide it.
                    self.scroll.iter_mut().for_each(|s| s.offset = 0);
                }
                Err(e) => self.prompt_error = Some(e),
            },
            KeyCode::Backspace => {
                text.pop();
                self.prompt_error = None;
            }
            KeyCode::Char(c) if c.is_ascii_digit() || c == ',' || c == ' ' => {
                text.push(c);
                self.prompt_error = None;
            }
            _ => {}
        }
    }

    /// The filter as the status line writes it: "1,2".
    pub fn filter_text(&self) -> String {
        self.filter.as_ref().map_or_else(String::new, |set| {
            set.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
        })
    }
}

/// "1", "1,2", "1 2": the nodes to show; empty clears the filter.
pub fn parse_nodes(text: &str) -> Result<Option<BTreeSet<i32>>, String> {
    let set = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i32>()
                .map_err(|_| format!("{s:?} is not a node number"))
        })
        .collect::<Result<BTreeSet<i32>, String>>()?;
    Ok((!set.is_empty()).then_some(set))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn typed(app: &mut App, s: &str) {
        for c in s.chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
    }

    #[test]
    fn tab_cycles_focus_both_ways() {
        let mut app = App::new();
        let mut seen = vec![app.focus];
        for _ in 0..5 {
            app.on_key(key(KeyCode::Tab));
            seen.push(app.focus);
        }
        assert_eq!(&seen[..5], &Pane::ALL);
        assert_eq!(seen[5], Pane::Nodes, "wraps around");
        app.on_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
        assert_eq!(app.focus, Pane::Probes);
    }

    #[test]
    fn quit_keys() {
        let mut app = App::new();
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        app.prompt = Some(String::new());
        assert_eq!(app.on_key(ctrl_c), Action::Quit, "even in the prompt");
        assert_eq!(
            app.on_key(key(KeyCode::Char('c'))),
            Action::None,
            "plain c is not"
        );
    }

    #[test]
    fn esc_closes_the_prompt_and_the_help_before_quitting() {
        let mut app = App::new();
        app.on_key(key(KeyCode::Char('/')));
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::None);
        assert!(app.prompt.is_none());
        app.on_key(key(KeyCode::Char('?')));
        assert!(app.help);
        assert_eq!(app.on_key(key(KeyCode::Tab)), Action::None);
        assert_eq!(app.focus, Pane::Nodes, "the help is modal");
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::None);
        assert!(!app.help);
        app.on_key(key(KeyCode::Char('?')));
        app.on_key(key(KeyCode::Char('?')));
        assert!(!app.help, "? toggles");
    }

    #[test]
    fn replay_keys_become_actions() {
        let mut app = App::new();
        assert_eq!(app.on_key(key(KeyCode::Char(' '))), Action::TogglePause);
        assert_eq!(app.on_key(key(KeyCode::Char('n'))), Action::Step);
        assert_eq!(app.on_key(key(KeyCode::Char('+'))), Action::Speed(2.0));
        assert_eq!(app.on_key(key(KeyCode::Char('-'))), Action::Speed(0.5));
    }

    #[test]
    fn the_prompt_sets_edits_and_clears_the_filter() {
        let mut app = App::new();
        app.on_key(key(KeyCode::Char('/')));
        typed(&mut app, "1,2q");
        assert_eq!(app.prompt.as_deref(), Some("1,2"), "only node lists can be typed");
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.filter, Some(BTreeSet::from([1, 2])));
        assert!(app.shows_node(Some(2)) && !app.shows_node(Some(0)) && !app.shows_node(None));

        assert_eq!(app.filter_text(), "1,2");

        app.on_key(key(KeyCode::Char('/')));
        assert_eq!(app.prompt.as_deref(), Some(""), "starts empty");
        typed(&mut app, "12");
        app.on_key(key(KeyCode::Backspace));
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.filter, Some(BTreeSet::from([1])));

        app.on_key(key(KeyCode::Char('/')));
        typed(&mut app, "3");
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.filter, Some(BTreeSet::from([1])), "Esc keeps the old filter");

        app.on_key(key(KeyCode::Char('/')));
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.filter, None, "an empty filter shows everything");
        assert!(app.shows_node(None));
    }

    #[test]
    fn node_lists_parse() {
        assert_eq!(parse_nodes("1"), Ok(Some(BTreeSet::from([1]))));
        assert_eq!(parse_nodes(" 2, 1 ,,2 "), Ok(Some(BTreeSet::from([1, 2]))));
        assert_eq!(parse_nodes("0 3"), Ok(Some(BTreeSet::from([0, 3]))));
        assert_eq!(parse_nodes(""), Ok(None));
        assert_eq!(parse_nodes(" , "), Ok(None));
        assert!(parse_nodes("99999999999").is_err());
    }

    #[test]
    fn a_bad_filter_keeps_the_prompt_open() {
        let mut app = App::new();
        app.prompt = Some("1 99999999999".into());
        app.on_key(key(KeyCode::Enter));
        assert!(app.prompt.is_some() && app.prompt_error.is_some());
        assert_eq!(app.filter, None);
    }

    #[test]
    fn scrolling_stays_within_the_content() {
        let mut app = App::new();
        app.focus = Pane::Events;
        app.scroll_mut(Pane::Events).fit(30, 10);
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.scroll_mut(Pane::Events).offset, 0, "not above the top");
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.scroll_mut(Pane::Events).offset, 1);
        app.on_key(key(KeyCode::PageDown));
        assert_eq!(app.scroll_mut(Pane::Events).offset, 11);
        app.on_key(key(KeyCode::PageDown));
        assert_eq!(
            app.scroll_mut(Pane::Events).offset,
            20,
            "the last page, not past it"
        );
        app.on_key(key(KeyCode::PageUp));
        assert_eq!(app.scroll_mut(Pane::Events).offset, 10);
        app.on_key(key(KeyCode::Home));
        assert_eq!(app.scroll_mut(Pane::Events).offset, 0);
        app.on_key(key(KeyCode::End));
        assert_eq!(app.scroll_mut(Pane::Events).offset, 20);
        assert_eq!(
            app.scroll_mut(Pane::Nodes).offset,
            0,
            "only the focused pane moves"
        );

        app.scroll_mut(Pane::Events).fit(12, 10);
        assert_eq!(app.scroll_mut(Pane::Events).offset, 2, "content shrank");
        app.scroll_mut(Pane::Events).fit(5, 10);
        app.on_key(key(KeyCode::End));
        assert_eq!(app.scroll_mut(Pane::Events).offset, 0, "everything fits");
    }

    #[test]
    fn applying_a_filter_scrolls_back_to_the_top() {
        let mut app = App::new();
        app.scroll_mut(Pane::Zones).fit(30, 10);
        app.scroll_mut(Pane::Zones).offset = 7;
        app.prompt = Some("0".into());
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.scroll_mut(Pane::Zones).offset, 0);
    }
}
