//! The model's memory blocks: a vector sorted by id, one compact entry per block. A host with
//! 128 TiB of 128 MiB blocks has a million of them; a sorted vector holds them in a few dozen
//! bytes each, where a tree map would double that. Blocks are created in id order (the frame
//! lists them sorted, hot-adds mostly append), so inserting in the middle is rare.
use super::{Block, BlockState, Placement};

#[derive(Debug, Clone, Default)]
pub struct Blocks {
    sorted: Vec<Block>,
}

impl Blocks {
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Room for `more` blocks (a frame's), allocated once.
    pub fn reserve(&mut self, more: usize) {
        self.sorted.reserve(more);
    }

    fn position(&self, id: u64) -> Result<usize, usize> {
        let (Some(first), Some(last)) = (self.sorted.first(), self.sorted.last()) else {
            return Err(0);
        };
        if id < first.id {
            return Err(0);
        }
        if last.id < id {
            // Appending is the common case for a new block.
            return Err(self.sorted.len());
        }
        // Ids are mostly dense (a host's blocks, hot-adds after them): a block is usually at
        // its offset from the first, and found without a search.
        let guess = usize::try_from(id - first.id).unwrap_or(usize::MAX);
        match self.sorted.get(guess) {
            Some(b) if b.id == id => Ok(guess),
            _ => self.sorted.binary_search_by_key(&id, |b| b.id),
        }
    }

    pub fn get(&self, id: u64) -> Option<&Block> {
        self.position(id).ok().map(|i| &self.sorted[i])
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Block> {
        self.position(id).ok().map(|i| &mut self.sorted[i])
    }

    /// The block, created (state unknown) if it was not known.
    pub fn entry(&mut self, id: u64) -> &mut Block {
        let i = match self.position(id) {
            Ok(i) => i,
            Err(i) => {
                self.sorted.insert(i, Block::new(id));
                i
            }
        };
        &mut self.sorted[i]
    }

    /// Puts `block` in place of whatever was known of its id.
    pub fn insert(&mut self, block: Block) {
        match self.position(block.id) {
            Ok(i) => self.sorted[i] = block,
            Err(i) => self.sorted.insert(i, block),
        }
    }

    /// In id order.
    pub fn iter(&self) -> std::slice::Iter<'_, Block> {
        self.sorted.iter()
    }
}

impl std::ops::Index<u64> for Blocks {
    type Output = Block;

    /// Panics when the block is not known, as a map's index does.
    fn index(&self, id: u64) -> &Block {
        self.get(id)
            .unwrap_or_else(|| panic!("memory block {id} is not known"))
    }
}

impl Block {
    pub(super) fn new(id: u64) -> Block {
        Block {
            id,
            node: None,
            zone: None,
            state: BlockState::Unknown,
            hot_added: false,
            onlined: 0,
            offlined: 0,
            placement: Placement::Unknown,
            vmemmap_pages: 0,
            hot_add: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_sorted_whatever_the_insertion_order() {
        let mut t = Blocks::default();
        for id in [5, 7, 1, 6, 3] {
            t.entry(id).onlined = id as u32;
        }
        t.entry(6).onlined += 10;
        assert_eq!(t.iter().map(|b| b.id).collect::<Vec<_>>(), [1, 3, 5, 6, 7]);
        assert_eq!(t.get(6).map(|b| b.onlined), Some(16));
        assert!(t.get(4).is_none() && t.get(8).is_none());
        t.insert(Block {
            hot_added: true,
            ..Block::new(3)
        });
        assert_eq!(t.len(), 5);
        assert!(t.get(3).unwrap().hot_added && t.get(3).unwrap().onlined == 0);
        t.insert(Block::new(0));
        assert_eq!(t.iter().next().map(|b| b.id), Some(0));
    }

    #[test]
    fn finds_blocks_around_holes_in_the_ids() {
        let mut t = Blocks::default();
        for id in [10, 11, 12, 20, 21, 40] {
            t.entry(id).onlined = id as u32;
        }
        // 20 is not at its offset from 10: a search finds it.
        for id in [10, 11, 12, 20, 21, 40] {
            assert_eq!(t.get(id).map(|b| b.onlined), Some(id as u32));
        }
        for id in [0, 9, 13, 15, 22, 39, 41, u64::MAX] {
            assert!(t.get(id).is_none(), "{id}");
        }
        t.entry(15);
        t.entry(5);
        assert_eq!(
            t.iter().map(|b| b.id).collect::<Vec<_>>(),
            [5, 10, 11, 12, 15, 20, 21, 40]
        );
    }

    #[test]
    fn a_block_entry_is_compact() {
        // A million blocks must fit well under 100 MB with everything else.
        assert!(
            std::mem::size_of::<Block>() <= 48,
            "{}",
            std::mem::size_of::<Block>()
        );
    }
}
