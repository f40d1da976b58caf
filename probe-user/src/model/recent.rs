//! The latest items of a history and how many there were: what long-running views keep of
//! timelines, so that their memory follows the host's size, not how long they have run.
use std::collections::VecDeque;

/// How many of each history the model keeps by default (`--keep`).
pub const DEFAULT_KEEP: usize = 1000;

fn cap_of(keep: usize) -> usize {
    if keep == 0 {
        usize::MAX
    } else {
        keep
    }
}

#[derive(Debug, Clone)]
pub struct Recent<T> {
    items: VecDeque<T>,
    cap: usize,
    seen: u64,
}

impl<T> Default for Recent<T> {
    fn default() -> Recent<T> {
        Recent::new(DEFAULT_KEEP)
    }
}

impl<T> Recent<T> {
    /// The latest `cap`; 0 keeps everything.
    pub fn new(cap: usize) -> Recent<T> {
        Recent {
            items: VecDeque::new(),
            cap: cap_of(cap),
            seen: 0,
        }
    }

    /// Keeps the latest `cap` from now on (dropping the oldest beyond it); 0 keeps everything.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap_of(cap);
        while self.items.len() > self.cap {
            self.items.pop_front();
        }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
        self.seen += 1;
    }

    /// Oldest first.
    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, T> {
        self.items.iter()
    }

    pub fn iter_mut(&mut self) -> std::collections::vec_deque::IterMut<'_, T> {
        self.items.iter_mut()
    }

    pub fn last(&self) -> Option<&T> {
        self.items.back()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many were pushed in all.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// How many were pushed but are no longer kept.
    pub fn left_out(&self) -> u64 {
        self.seen - self.items.len() as u64
    }
}

/// The `i`-th kept item, oldest first.
impl<T> std::ops::Index<usize> for Recent<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.items[i]
    }
}

impl<'a, T> IntoIterator for &'a Recent<T> {
    type Item = &'a T;
    type IntoIter = std::collections::vec_deque::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_and_counts_all() {
        let mut r = Recent::new(3);
        for i in 0..10 {
            r.push(i);
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![7, 8, 9]);
        assert_eq!((r.seen(), r.left_out(), r.len()), (10, 7, 3));
        r.set_cap(1);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![9]);
        assert_eq!(r.seen(), 10);
    }
}
