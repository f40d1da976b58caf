//! The map of the model's nodes and zones, which nearly every event looks up. Their keys are
//! small integers (node ids, and zone indexes within a node), so a table indexed by key finds an
//! entry without a search, where a B-tree compares keys level by level. The entries stay in a
//! vector sorted by key, to iterate in key order as a `BTreeMap` does. A host has a few dozen
//! of them at most, added rarely.
use std::ops::Index;

use crate::model::event::ZoneId;

/// A key that is a small integer in practice, and then has a place in a table.
pub trait DenseKey: Ord {
    /// Distinct keys have distinct slots; None for keys too large (or negative) for a table.
    fn slot(&self) -> Option<usize>;
}

/// Node ids a table covers: MAX_NUMNODES is 1024 at most (CONFIG_NODES_SHIFT <= 10).
const NODE_SLOTS: usize = 1024;
/// Zone indexes a table covers per node (MAX_NR_ZONES is 6 at most).
const ZONE_SLOTS: usize = 8;

impl DenseKey for i32 {
    fn slot(&self) -> Option<usize> {
        usize::try_from(*self).ok().filter(|&n| n < NODE_SLOTS)
    }
}

impl DenseKey for ZoneId {
    fn slot(&self) -> Option<usize> {
        let node = self.node.slot()?;
        let zone = usize::from(self.zone);
        (zone < ZONE_SLOTS).then_some(node * ZONE_SLOTS + zone)
    }
}

/// Not in the vector.
const ABSENT: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub struct DenseMap<K, V> {
    sorted: Vec<(K, V)>,
    /// Position in `sorted` by slot, ABSENT when no key of the map has that slot.
    by_slot: Vec<u32>,
}

impl<K, V> Default for DenseMap<K, V> {
    fn default() -> Self {
        DenseMap {
            sorted: Vec::new(),
            by_slot: Vec::new(),
        }
    }
}

/// Entries as `(&key, &value)`, in key order.
pub type Iter<'a, K, V> = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

impl<K: DenseKey, V> DenseMap<K, V> {
    #[inline]
    fn position(&self, key: &K) -> Result<usize, usize> {
        match key.slot().and_then(|s| self.by_slot.get(s)) {
            Some(&p) if p != ABSENT => Ok(p as usize),
            // Not there, or without a slot: the search also gives the place to insert.
            _ => self.sorted.binary_search_by(|(k, _)| k.cmp(key)),
        }
    }

    // Kept out of line: lookups, inlined, stay a few instructions.
    #[cold]
    #[inline(never)]
    fn insert_default(&mut self, i: usize, key: K)
    where
        V: Default,
    {
        self.sorted.insert(i, (key, V::default()));
        // The entries after it moved: renumber all (a new node or zone is rare).
        self.by_slot.fill(ABSENT);
        for (p, (k, _)) in self.sorted.iter().enumerate() {
            if let Some(s) = k.slot() {
                if s >= self.by_slot.len() {
                    self.by_slot.resize(s + 1, ABSENT);
                }
                self.by_slot[s] = p as u32;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.position(key).ok().map(|i| &self.sorted[i].1)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.position(key).ok().map(|i| &mut self.sorted[i].1)
    }

    /// The value of `key`, inserted as the default first if missing.
    #[inline]
    pub fn or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let i = match self.position(&key) {
            Ok(i) => i,
            Err(i) => {
                self.insert_default(i, key);
                i
            }
        };
        &mut self.sorted[i].1
    }

    pub fn iter(&self) -> Iter<'_, K, V> {
        fn pair<K, V>((k, v): &(K, V)) -> (&K, &V) {
            (k, v)
        }
        self.sorted.iter().map(pair as fn(&'_ (K, V)) -> (&'_ K, &'_ V))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.sorted.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.sorted.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.sorted.iter().map(|(_, v)| v)
    }

    /// The entries in key order, for range queries by `partition_point`.
    pub fn as_slice(&self) -> &[(K, V)] {
        &self.sorted
    }
}

impl<K: DenseKey, V> Index<&K> for DenseMap<K, V> {
    type Output = V;

    /// Panics when the key is missing, as a map's index does.
    fn index(&self, key: &K) -> &V {
        self.get(key).expect("key not in the map")
    }
}

impl<'a, K: DenseKey, V> IntoIterator for &'a DenseMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_in_key_order_whatever_the_insertion_order() {
        let mut m = DenseMap::default();
        // -1 and 5000 have no slot: found by searching.
        for k in [3, -1, 7, 5000, 0] {
            *m.or_default(k) += k * 10;
        }
        *m.or_default(7) += 1;
        *m.or_default(5000) += 1;
        assert_eq!(m.keys().copied().collect::<Vec<i32>>(), [-1, 0, 3, 7, 5000]);
        assert_eq!(m.values().copied().collect::<Vec<i32>>(), [-10, 0, 30, 71, 50001]);
        assert_eq!(
            (m.len(), m[&3], m[&-1], m.get(&4), m.get(&-2), m.get(&9999)),
            (5, 30, -10, None, None, None)
        );
        if let Some(v) = m.get_mut(&0) {
            *v = 5;
        }
        let pairs: Vec<(i32, i32)> = (&m).into_iter().map(|(&k, &v)| (k, v)).collect();
        assert_eq!(pairs, [(-1, -10), (0, 5), (3, 30), (7, 71), (5000, 50001)]);
    }

    #[test]
    fn zones_find_their_entries_by_node_and_index() {
        let z = |node, zone| ZoneId { node, zone };
        let keys = [
            z(1, 3),
            z(0, 2),
            z(1, 0),
            z(-1, 1),
            z(0, 200),
            z(2000, 1),
            z(0, 3),
        ];
        let mut m = DenseMap::default();
        for (i, k) in keys.iter().enumerate() {
            *m.or_default(*k) = i;
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(m.get(k), Some(&i), "{k:?}");
        }
        assert_eq!(m.get(&z(1, 2)), None);
        assert_eq!(m.get(&z(0, 1)), None);
        let mut sorted = keys.to_vec();
        sorted.sort();
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), sorted);
        assert_eq!(z(1, 7).slot(), Some(15));
        assert_eq!(
            (z(1, 8).slot(), z(1024, 0).slot(), z(-1, 0).slot()),
            (None, None, None)
        );
    }
}
