//! Every probe: attached or not, how, and what the chosen way loses or why nothing attached.
//! Problems come first, so that a short pane still shows them.
use ratatui::{
    style::{Color, Modifier, Style},
    text::{Line, Span},
};

use super::{styled, Body, Ctx};
use crate::views::report::fmt_ns;

/// Below this many columns for the method and note, names are not padded into a column.
const MIN_REST: usize = 24;

pub fn body(ctx: &Ctx, width: usize) -> Body {
    let Some(header) = &ctx.stream.header else {
        return Body::waiting();
    };
    // Trouble first: what did not attach, then what attached a lesser way.
    let mut probes: Vec<_> = header.probes.iter().collect();
    probes.sort_by_key(|p| (p.attached, p.loses.is_none()));
    let longest = probes.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let name_width = if width >= 2 + longest + 1 + MIN_REST {
        longest
    } else {
        0
    };
    let rows = probes
        .iter()
        .map(|p| {
            let (mark, style) = if p.attached {
                ("✓", Style::new().fg(Color::Green))
            } else {
                ("✗", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD))
            };
            let how = match p.method {
                // The function, unless the probe is named after it.
                Some(m) if p.function == p.name => m.describe().to_string(),
                Some(_) => p.how().unwrap_or_default(),
                None => "-".into(),
            };
            let note = match (&p.loses, &p.reason) {
                (Some(l), _) => format!(" · loses: {l}"),
                (None, Some(r)) if !p.attached => format!(" · {r}"),
                _ => String::new(),
            };
            // Self-cost, once run-time statistics have a sample: average per run and runs.
            let cost = ctx
                .model()
                .and_then(|m| m.probe_costs.get(&p.name))
                .map_or(String::new(), |c| format!("{} x{} ", fmt_ns(c.avg_ns()), c.runs));
            Line::from(vec![
                styled(format!("{mark} "), style),
                Span::raw(format!("{:<name_width$} ", p.name)),
                styled(cost, Style::new().fg(Color::Cyan)),
                styled(how, Style::new().fg(Color::Gray)),
                styled(note, Style::new().fg(Color::Yellow)),
            ])
        })
        .collect();
    let attached = probes.iter().filter(|p| p.attached).count();
    Body {
        note: format!("{attached}/{} attached", probes.len()),
        header: None,
        rows,
        footer: Vec::new(),
    }
}
