//! What `mhpscope top`'s screen says, read from its text (tmux capture-pane): the scenario
//! waits on it, the checks compare it with the ground truth.

use std::collections::BTreeMap;

/// What `mhpscope top`'s screen (tmux capture-pane text) says about hot-adds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TopView {
    /// "Block map · K/N hot-added": K.
    pub hot_added_blocks: Option<u64>,
    /// node -> (hot-adds, onlines) from the nodes pane's "add A on B ..." lines.
    pub nodes: BTreeMap<i64, (u64, u64)>,
}

pub fn parse_top_screen(screen: &str) -> TopView {
    let mut v = TopView::default();
    let mut node = None;
    for line in screen.lines() {
        if let Some(i) = line.find("Block map · ") {
            let rest = &line[i + "Block map · ".len()..];
            v.hot_added_blocks = rest.split('/').next().and_then(|k| k.trim().parse().ok());
        }
        // Panes sit side by side: the nodes pane is the left one, after the border.
        let cell = line.trim_start_matches('│');
        let words: Vec<&str> = cell.split_whitespace().collect();
        match words.as_slice() {
            [n, "RAM", ..] => node = n.parse::<i64>().ok(),
            ["add", a, "on", o, ..] => {
                if let (Some(n), Ok(a), Ok(o)) = (node, a.parse(), o.parse()) {
                    v.nodes.insert(n, (a, o));
                }
            }
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_screen_parses() {
        let screen = "\
┌ ▶ Nodes · 2 of 2 ──────────────────────────────┐┌ Block map · 3/11 hot-added ┐
│node  inits    p50    p99    max init times     ││ 0 O·D·D·D·D·D·D·D·x*x+x+   │
│0 RAM     0      -      -      -                ││                            │
│add 0 on 0 off 0 rm 0 fail 0                    ││D DMA32  O online  x removed│
│1 RAM     4  1.5ms  9.2ms  9.2ms █▃▃▃           ││memmap * self-hosted        │
│add 2 on 3 off 3 rm 2 fail 0 last remove +11.364││+ existing memory  · unknown│
";
        let v = parse_top_screen(screen);
        assert_eq!(v.hot_added_blocks, Some(3));
        assert_eq!(v.nodes.get(&0), Some(&(0, 0)));
        assert_eq!(v.nodes.get(&1), Some(&(2, 3)));
    }
}
