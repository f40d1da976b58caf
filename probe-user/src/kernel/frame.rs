//! The static picture, readable without eBPF: memory blocks, nodes and zones from sysfs and
//! /proc/zoneinfo. Read at start-up (the frame traced events sit on) and again at the end.
use std::{
    fs,
    path::{Path, PathBuf},
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod blocks;
pub mod config;
pub use blocks::{BlockList, BlockRef, BlockRun};
pub use config::HotplugConfig;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },
}

/// The static picture: memory blocks, online nodes and zones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Frame {
    /// sysfs `block_size_bytes`: the memory block size.
    pub block_size_bytes: u64,
    /// Bytes.
    pub page_size: u64,
    pub blocks: BlockList,
    pub nodes: Vec<NodeFrame>,
    pub zones: Vec<ZoneFrame>,
    /// The hotplug configuration in force (absent from recordings made before it was read).
    #[serde(default)]
    pub config: HotplugConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlockFrame {
    /// The block number (sysfs `memoryN`); it starts at id * block_size_bytes.
    pub id: u64,
    /// sysfs `state`: online, offline, going-offline...
    pub state: String,
    /// None when sysfs links the block to no node.
    pub node: Option<i32>,
    /// sysfs `valid_zones`: the zone when online, the candidates when offline.
    pub valid_zones: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeFrame {
    pub node: i32,
    pub has_cpu: bool,
    pub has_memory: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ZoneFrame {
    pub node: i32,
    /// The zone name as /proc/zoneinfo prints it.
    pub zone: String,
    /// Absent from /proc/zoneinfo for unpopulated zones.
    pub start_pfn: Option<u64>,
    /// Pages, as in /proc/zoneinfo.
    pub spanned: u64,
    pub present: u64,
    pub managed: u64,
    /// Free pages ("pages free"); absent from recordings made before it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<u64>,
}

/// Reads the frame below `root` ("/" on a host; a fixture tree in tests).
pub fn read(root: &Path) -> Result<Frame, FrameError> {
    let mem_dir = root.join("sys/devices/system/memory");
    let block_size_path = mem_dir.join("block_size_bytes");
    let block_size_text = read_text(&block_size_path)?;
    let block_size_bytes =
        u64::from_str_radix(block_size_text.trim(), 16).map_err(|_| FrameError::Parse {
            path: block_size_path.clone(),
            content: block_size_text.clone(),
        })?;
    let mut blocks = Vec::new();
    for entry in fs::read_dir(&mem_dir).map_err(|source| FrameError::Io {
        path: mem_dir.clone(),
        source,
    })? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix("memory").and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        blocks.push(read_block(&entry.path(), id));
    }
    blocks.sort_by_key(|b| b.id);
    let blocks: BlockList = blocks.into_iter().collect();

    let node_dir = root.join("sys/devices/system/node");
    let list = |file: &str| {
        fs::read_to_string(node_dir.join(file))
            .map(|s| parse_node_list(&s))
            .unwrap_or_default()
    };
    let (online, with_cpu, with_memory) = (list("online"), list("has_cpu"), list("has_memory"));
    let nodes = online
        .iter()
        .map(|&node| NodeFrame {
            node,
            has_cpu: with_cpu.contains(&node),
            has_memory: with_memory.contains(&node),
        })
        .collect();

    let zoneinfo_path = root.join("proc/zoneinfo");
    let zones = parse_zoneinfo(&read_text(&zoneinfo_path)?);
    Ok(Frame {
        block_size_bytes,
        page_size: page_size(),
        blocks,
        nodes,
        zones,
        config: config::read(root),
    })
}

fn read_text(path: &Path) -> Result<String, FrameError> {
    fs::read_to_string(path).map_err(|source| FrameError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_block(dir: &Path, id: u64) -> BlockFrame {
    let attr = |name: &str| {
        fs::read_to_string(dir.join(name))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let node = fs::read_dir(dir).ok().and_then(|entries| {
        entries.filter_map(Result::ok).find_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("node"))
                .and_then(|n| n.parse::<i32>().ok())
        })
    });
    BlockFrame {
        id,
        state: attr("state").unwrap_or_else(|| "unknown".into()),
        node,
        valid_zones: attr("valid_zones"),
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

/// Node lists like `0-1,3`.
pub fn parse_node_list(text: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<i32>().ok()),
        }
    }
    out
}

/// The per-zone figures of /proc/zoneinfo.
pub fn parse_zoneinfo(text: &str) -> Vec<ZoneFrame> {
    let mut zones: Vec<ZoneFrame> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("Node ") {
            // "Node 0, zone   Normal"
            if let Some((node, zone)) = rest.split_once(", zone") {
                if let Ok(node) = node.trim().parse::<i32>() {
                    zones.push(ZoneFrame {
                        node,
                        zone: zone.trim().to_string(),
                        start_pfn: None,
                        spanned: 0,
                        present: 0,
                        managed: 0,
                        free: None,
                    });
                }
            }
            continue;
        }
        let Some(zone) = zones.last_mut() else { continue };
        let mut words = trimmed.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        if let ("pages", "free", Some(Ok(v))) = (key, value, words.next().map(str::parse::<u64>)) {
            zone.free = Some(v);
            continue;
        }
        let Ok(value) = value.parse::<u64>() else { continue };
        match key {
            "spanned" => zone.spanned = value,
            "present" => zone.present = value,
            "managed" => zone.managed = value,
            "start_pfn:" => zone.start_pfn = Some(value),
            _ => {}
        }
    }
    zones
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONEINFO: &str = "Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 12
  pages free     3840
        boost    0
        spanned  4095
        present  3998
        managed  3840
        cma      0
        protection: (0, 437, 437, 437, 437)
  start_pfn:           1
Node 1, zone   Movable
  pages free     0
        spanned  0
        present  0
        managed  0
        protection: (0, 0, 0, 0, 0)
Node 1, zone   Device
  pages free     0
";

    #[test]
    fn zoneinfo_figures_per_zone() {
        let zones = parse_zoneinfo(ZONEINFO);
        assert_eq!(zones.len(), 3);
        assert_eq!(
            zones[0],
            ZoneFrame {
                node: 0,
                zone: "DMA".into(),
                start_pfn: Some(1),
                spanned: 4095,
                present: 3998,
                managed: 3840,
                free: Some(3840),
            }
        );
        assert_eq!(
            (zones[1].node, zones[1].zone.as_str(), zones[1].start_pfn),
            (1, "Movable", None)
        );
        assert_eq!(zones[2].zone, "Device");
    }

    #[test]
    fn node_lists() {
        assert_eq!(parse_node_list("0-1,3\n"), vec![0, 1, 3]);
        assert_eq!(parse_node_list("0\n"), vec![0]);
        assert_eq!(parse_node_list("\n"), Vec::<i32>::new());
    }

    #[test]
    fn reads_a_sysfs_tree() {
        let root = std::env::temp_dir().join(format!("mhpscope-frame-{}", std::process::id()));
        let mem = root.join("sys/devices/system/memory");
        for (id, state, node) in [(32u64, "online", 1), (5, "offline", 0)] {
            let b = mem.join(format!("memory{id}"));
            fs::create_dir_all(b.join(format!("node{node}"))).unwrap();
            fs::write(b.join("state"), format!("{state}\n")).unwrap();
        }
        fs::write(mem.join("memory32/valid_zones"), "Movable\n").unwrap();
        fs::write(mem.join("block_size_bytes"), "8000000\n").unwrap();
        let node = root.join("sys/devices/system/node");
        fs::create_dir_all(&node).unwrap();
        fs::write(node.join("online"), "0-1\n").unwrap();
        fs::write(node.join("has_cpu"), "0-1\n").unwrap();
        fs::write(node.join("has_memory"), "0\n").unwrap();
        fs::create_dir_all(root.join("proc")).unwrap();
        fs::write(root.join("proc/zoneinfo"), ZONEINFO).unwrap();

        let frame = read(&root).unwrap();
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(frame.block_size_bytes, 128 << 20);
        assert_eq!(frame.blocks.iter().map(|b| b.id).collect::<Vec<_>>(), vec![5, 32]);
        let blocks: Vec<BlockRef> = frame.blocks.iter().collect();
        assert_eq!(blocks[1].node, Some(1));
        assert_eq!(blocks[1].valid_zones, Some("Movable"));
        assert_eq!(blocks[0].valid_zones, None);
        assert!(frame.nodes[1].has_cpu && !frame.nodes[1].has_memory);
        assert_eq!(frame.zones.len(), 3);
    }

    #[test]
    fn missing_tree_is_a_clear_error() {
        let err = read(Path::new("/nonexistent-mhpscope-root")).unwrap_err();
        assert!(err.to_string().contains("block_size_bytes"), "{err}");
    }
}
