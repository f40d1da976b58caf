//! A frame's memory blocks, held as runs of consecutive blocks alike in state, node and valid
//! zones (the ranges `lsmem` prints): a host with a million blocks is a handful of runs in
//! memory. A recording still lists them one per block, as sysfs has them.
use std::fmt;

use schemars::JsonSchema;
use serde::{
    de::{SeqAccess, Visitor},
    ser::SerializeSeq,
    Deserialize, Deserializer, Serialize, Serializer,
};

use super::BlockFrame;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockList {
    runs: Vec<BlockRun>,
    len: u64,
}

/// `count` consecutive blocks from `first`, alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRun {
    pub first: u64,
    pub count: u64,
    pub state: String,
    pub node: Option<i32>,
    pub valid_zones: Option<String>,
}

/// One block of a frame, borrowed from its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BlockRef<'a> {
    pub id: u64,
    pub state: &'a str,
    pub node: Option<i32>,
    pub valid_zones: Option<&'a str>,
}

impl BlockList {
    /// Appends a block; it extends the last run when it follows it and is alike.
    pub fn push(&mut self, b: BlockFrame) {
        self.len += 1;
        if let Some(r) = self.runs.last_mut() {
            if r.first.checked_add(r.count) == Some(b.id)
                && r.state == b.state
                && r.node == b.node
                && r.valid_zones == b.valid_zones
            {
                r.count += 1;
                return;
            }
        }
        self.runs.push(BlockRun {
            first: b.id,
            count: 1,
            state: b.state,
            node: b.node,
            valid_zones: b.valid_zones,
        });
    }

    /// Blocks, not runs.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn runs(&self) -> &[BlockRun] {
        &self.runs
    }

    /// Every block, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = BlockRef<'_>> {
        self.runs.iter().flat_map(|r| {
            (r.first..r.first + r.count).map(move |id| BlockRef {
                id,
                state: &r.state,
                node: r.node,
                valid_zones: r.valid_zones.as_deref(),
            })
        })
    }
}

impl FromIterator<BlockFrame> for BlockList {
    fn from_iter<I: IntoIterator<Item = BlockFrame>>(iter: I) -> BlockList {
        let mut list = BlockList::default();
        for b in iter {
            list.push(b);
        }
        list
    }
}

impl Serialize for BlockList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len as usize))?;
        for b in self.iter() {
            seq.serialize_element(&b)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for BlockList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BlockList, D::Error> {
        struct Runs;
        impl<'de> Visitor<'de> for Runs {
            type Value = BlockList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of memory blocks")
            }
            // Block by block into runs: the list is never held one entry per block.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BlockList, A::Error> {
                let mut list = BlockList::default();
                while let Some(b) = seq.next_element::<BlockFrame>()? {
                    list.push(b);
                }
                Ok(list)
            }
        }
        d.deserialize_seq(Runs)
    }
}

impl JsonSchema for BlockList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <Vec<BlockFrame>>::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<BlockFrame>>::json_schema(generator)
    }

    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(id: u64, state: &str, node: i32, zones: &str) -> BlockFrame {
        BlockFrame {
            id,
            state: state.into(),
            node: Some(node),
            valid_zones: Some(zones.into()),
        }
    }

    #[test]
    fn alike_neighbours_share_a_run_and_come_back_one_by_one() {
        let blocks = vec![
            block(0, "online", 0, "Normal"),
            block(1, "online", 0, "Normal"),
            block(2, "online", 0, "Normal"),
            block(3, "online", 1, "Normal"),
            block(5, "online", 1, "Normal"),
            block(6, "offline", 1, "Normal Movable"),
        ];
        let list: BlockList = blocks.iter().cloned().collect();
        assert_eq!(list.len(), 6);
        assert_eq!(
            list.runs().iter().map(|r| (r.first, r.count)).collect::<Vec<_>>(),
            [(0, 3), (3, 1), (5, 1), (6, 1)]
        );
        let back: Vec<BlockFrame> = list
            .iter()
            .map(|b| BlockFrame {
                id: b.id,
                state: b.state.into(),
                node: b.node,
                valid_zones: b.valid_zones.map(Into::into),
            })
            .collect();
        assert_eq!(back, blocks);
    }

    #[test]
    fn recorded_one_entry_per_block() {
        let list: BlockList = (0..3).map(|id| block(id, "online", 0, "Normal")).collect();
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(
            json,
            r#"[{"id":0,"state":"online","node":0,"valid_zones":"Normal"},{"id":1,"state":"online","node":0,"valid_zones":"Normal"},{"id":2,"state":"online","node":0,"valid_zones":"Normal"}]"#
        );
        let back: BlockList = serde_json::from_str(&json).unwrap();
        assert_eq!(back, list);
        let per_block: Vec<BlockFrame> = serde_json::from_str(&json).unwrap();
        assert_eq!(per_block.len(), 3);
    }
}
