//! One cell per memory block: a character for its state (the zone's letter when online), then
//! a marker for where its memmap lives. Readable without colour (tmux capture, a mono
//! terminal); colour adds the zone. The blocks touched while tracing are then listed in full.
use std::collections::BTreeMap;

use ratatui::{
    style::{Color, Modifier, Style},
    text::{Line, Span},
};

use super::{pack, styled, Body, Ctx};
use crate::{
    model::{BlockState, Placement},
    views::report::BlockDoc,
    views::tui::fmt::short_bytes,
};

/// Characters of a cell.
const CELL: usize = 2;
/// Beyond this many blocks one cell stands for several consecutive ones (the first of them
/// drawn): a million-block host stays a map that scrolls, built in a millisecond.
const MAX_CELLS: u64 = 1 << 16;

pub fn body(ctx: &Ctx, width: usize) -> Body {
    let Some(doc) = ctx.doc else {
        return Body::waiting();
    };
    let blocks: Vec<&BlockDoc> = doc.blocks.iter().filter(|b| ctx.shows(b.node)).collect();
    // One cell per block (a range repeats its cell), or per `per_cell` blocks on a huge host.
    let total: u64 = blocks.iter().map(|b| b.count).sum();
    let per_cell = total.div_ceil(MAX_CELLS).max(1);
    let cells: Vec<(u64, &BlockDoc)> = blocks
        .iter()
        .flat_map(|b| b.ids().map(move |id| (id, *b)))
        .step_by(per_cell as usize)
        .collect();
    let id_width = cells.last().map_or(1, |c| c.0.to_string().len());
    let per_row = (width.saturating_sub(id_width + 1) / CELL).max(1);
    let mut rows: Vec<Line<'static>> = cells
        .chunks(per_row)
        .map(|chunk| {
            let mut spans = vec![styled(
                format!("{:>id_width$} ", chunk[0].0),
                Style::new().fg(Color::DarkGray),
            )];
            for (_, b) in chunk {
                let (c, style) = state_glyph(b);
                spans.push(styled(c.to_string(), style));
                let (m, style) = placement_glyph(b.vmemmap.placement);
                spans.push(styled(m.to_string(), style));
            }
            Line::from(spans)
        })
        .collect();

    let touched: Vec<&&BlockDoc> = blocks.iter().filter(|b| touched(b)).collect();
    if !touched.is_empty() {
        rows.push(Line::from(""));
        rows.extend(touched.iter().map(|b| detail(b)));
    }
    let hot_added: u64 = blocks.iter().filter(|b| b.hot_added).map(|b| b.count).sum();
    let mut note = format!("{hot_added}/{total} hot-added");
    if per_cell > 1 {
        note.push_str(&format!(" · 1 cell = {per_cell} blocks"));
    }
    Body {
        note,
        header: None,
        rows,
        footer: legend(&blocks, width),
    }
}

/// Seen doing something while tracing, as the report's block table has it.
fn touched(b: &BlockDoc) -> bool {
    b.hot_added || b.onlined > 0 || b.offlined > 0 || b.vmemmap.placement != Placement::Unknown
}

/// The zone's initial: D for DMA and DMA32, N, M, and so on.
fn zone_letter(zone: &str) -> char {
    zone.chars().next().map_or('?', |c| c.to_ascii_uppercase())
}

fn zone_color(zone: &str) -> Color {
    match zone {
        "Normal" => Color::Blue,
        "Movable" => Color::Magenta,
        "Device" => Color::Yellow,
        z if z.starts_with("DMA") => Color::Cyan,
        _ => Color::White,
    }
}

fn state_glyph(b: &BlockDoc) -> (char, Style) {
    match (&b.state, &b.zone) {
        (BlockState::Online, Some(z)) => (
            zone_letter(z),
            Style::new().fg(zone_color(z)).add_modifier(Modifier::BOLD),
        ),
        (BlockState::Online, None) => ('O', Style::new().fg(Color::Green)),
        (BlockState::Offline, _) => ('o', Style::new().fg(Color::Yellow)),
        (BlockState::Removed, _) => ('x', Style::new().fg(Color::DarkGray)),
        (BlockState::GoingOffline, _) => ('g', Style::new().fg(Color::Yellow)),
        (BlockState::Unknown, _) => ('?', Style::new().fg(Color::DarkGray)),
    }
}

fn placement_glyph(p: Placement) -> (char, Style) {
    match p {
        Placement::SelfHosted => ('*', Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)),
        Placement::ExistingMemory => ('+', Style::new().fg(Color::LightRed)),
        Placement::Unknown => ('·', Style::new().fg(Color::DarkGray)),
    }
}

fn placement_name(p: Placement) -> &'static str {
    match p {
        Placement::SelfHosted => "self-hosted",
        Placement::ExistingMemory => "existing memory",
        Placement::Unknown => "unknown",
    }
}

fn detail(b: &BlockDoc) -> Line<'static> {
    let node = b.node.map_or("?".to_string(), |n| n.to_string());
    let zone = b.zone.as_deref().unwrap_or("-");
    let mut memmap = format!("memmap {}", placement_name(b.vmemmap.placement));
    if b.vmemmap.bytes > 0 {
        memmap.push_str(&format!(" {}", short_bytes(b.vmemmap.bytes)));
    }
    if !b.vmemmap.off_node.is_empty() {
        let nodes: Vec<String> = b.vmemmap.off_node.iter().map(|n| n.to_string()).collect();
        memmap.push_str(&format!(" OFF-NODE {}", nodes.join(",")));
    }
    let (c, style) = state_glyph(b);
    Line::from(vec![
        styled(format!("{c} "), style),
        Span::raw(format!(
            "{} n{node} {zone} {} on/off {}/{} {memmap}",
            b.name(),
            b.state.as_str(),
            b.onlined,
            b.offlined
        )),
    ])
}

/// The states and zones on the map, then every memmap placement.
fn legend(blocks: &[&BlockDoc], width: usize) -> Vec<Line<'static>> {
    // Letter -> zone names sharing it ("D" -> DMA, DMA32).
    let mut zones: BTreeMap<char, Vec<String>> = BTreeMap::new();
    let mut states: Vec<(char, Style, &str)> = Vec::new();
    for b in blocks {
        match (&b.state, &b.zone) {
            (BlockState::Online, Some(z)) => {
                let names = zones.entry(zone_letter(z)).or_default();
                if !names.contains(z) {
                    names.push(z.clone());
                }
            }
            (state, _) => {
                let (c, style) = state_glyph(b);
                let name = state.as_str();
                if !states.iter().any(|s| s.0 == c) {
                    states.push((c, style, name));
                }
            }
        }
    }
    let mut items: Vec<Vec<Span<'static>>> = Vec::new();
    for (c, names) in zones {
        let style = Style::new()
            .fg(zone_color(&names[0]))
            .add_modifier(Modifier::BOLD);
        items.push(vec![
            styled(c.to_string(), style),
            Span::raw(format!(" {}", names.join("/"))),
        ]);
    }
    for (c, style, name) in states {
        items.push(vec![styled(c.to_string(), style), Span::raw(format!(" {name}"))]);
    }
    let memmap = [
        Placement::SelfHosted,
        Placement::ExistingMemory,
        Placement::Unknown,
    ];
    for (i, p) in memmap.into_iter().enumerate() {
        let (m, style) = placement_glyph(p);
        let label = if i == 0 { "memmap " } else { "" };
        items.push(vec![
            Span::raw(label),
            styled(m.to_string(), style),
            Span::raw(format!(" {}", placement_name(p))),
        ]);
    }
    pack(items, width)
}
