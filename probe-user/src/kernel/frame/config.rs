//! The hotplug configuration in force, as sysfs and procfs show it: what decides where added
//! memory goes, whether it is onlined at all, and where its memmap comes from.
use std::{fs, path::Path};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Each field is None when the kernel does not have the knob (or it could not be read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HotplugConfig {
    /// `memory_hotplug.memmap_on_memory`: "Y", "N" or "force" (6.6 and later).
    pub memmap_on_memory: Option<String>,
    /// `/sys/devices/system/memory/auto_online_blocks`: offline, online, online_kernel,
    /// online_movable.
    pub auto_online_blocks: Option<String>,
    /// `memory_hotplug.online_policy`: contig-zones or auto-movable.
    pub online_policy: Option<String>,
    /// `memory_hotplug.auto_movable_ratio`: MOVABLE:KERNEL ratio in percent (auto-movable).
    pub auto_movable_ratio: Option<u32>,
    /// `memory_hotplug.auto_movable_numa_aware` ("Y"/"N").
    pub auto_movable_numa_aware: Option<bool>,
    /// `movable_node` on the kernel command line.
    pub movable_node: Option<bool>,
    /// Per dax device (`/sys/bus/dax/devices/daxX.Y/memmap_on_memory`, 6.8 and later).
    #[serde(default)]
    pub dax_memmap_on_memory: Vec<(String, bool)>,
}

/// Reads the configuration below `root` ("/" on a host).
pub fn read(root: &Path) -> HotplugConfig {
    let text = |p: &str| {
        fs::read_to_string(root.join(p))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let param = |name: &str| text(&format!("sys/module/memory_hotplug/parameters/{name}"));
    let cmdline = text("proc/cmdline");
    let mut dax = Vec::new();
    if let Ok(entries) = fs::read_dir(root.join("sys/bus/dax/devices")) {
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(v) = fs::read_to_string(e.path().join("memmap_on_memory")) {
                dax.push((name, parse_bool(v.trim()).unwrap_or(false)));
            }
        }
        dax.sort();
    }
    HotplugConfig {
        memmap_on_memory: param("memmap_on_memory"),
        auto_online_blocks: text("sys/devices/system/memory/auto_online_blocks"),
        online_policy: param("online_policy"),
        auto_movable_ratio: param("auto_movable_ratio").and_then(|v| v.parse().ok()),
        auto_movable_numa_aware: param("auto_movable_numa_aware").and_then(|v| parse_bool(&v)),
        movable_node: cmdline.map(|c| c.split_whitespace().any(|w| w == "movable_node")),
        dax_memmap_on_memory: dax,
    }
}

/// Kernel booleans as sysfs prints them: Y/N, 1/0.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "Y" | "y" | "1" => Some(true),
        "N" | "n" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_sysfs_tree() {
        let dir = std::env::temp_dir().join(format!("mhpscope-config-{}", std::process::id()));
        let w = |p: &str, v: &str| {
            let path = dir.join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, v).unwrap();
        };
        w("sys/module/memory_hotplug/parameters/memmap_on_memory", "Y\n");
        w(
            "sys/module/memory_hotplug/parameters/online_policy",
            "auto-movable\n",
        );
        w("sys/module/memory_hotplug/parameters/auto_movable_ratio", "301\n");
        w(
            "sys/module/memory_hotplug/parameters/auto_movable_numa_aware",
            "N\n",
        );
        w("sys/devices/system/memory/auto_online_blocks", "offline\n");
        w("proc/cmdline", "root=/dev/vda movable_node quiet\n");
        w("sys/bus/dax/devices/dax0.0/memmap_on_memory", "1\n");
        let c = read(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(c.memmap_on_memory.as_deref(), Some("Y"));
        assert_eq!(c.online_policy.as_deref(), Some("auto-movable"));
        assert_eq!(c.auto_movable_ratio, Some(301));
        assert_eq!(c.auto_movable_numa_aware, Some(false));
        assert_eq!(c.auto_online_blocks.as_deref(), Some("offline"));
        assert_eq!(c.movable_node, Some(true));
        assert_eq!(c.dax_memmap_on_memory, vec![("dax0.0".to_string(), true)]);
    }

    #[test]
    fn a_kernel_without_the_knobs_has_none() {
        let c = read(Path::new("/nonexistent-root"));
        assert_eq!(c, HotplugConfig::default());
    }
}
