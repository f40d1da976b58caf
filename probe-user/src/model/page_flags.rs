//! What a dumped `struct page` is: its flags and page type decoded with the running kernel's
//! own numbering (from its BTF, written into the recording header), its node and zone.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the running kernel lays out `page->flags` and `page->page_type`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PageFlagsLayout {
    /// `enum pageflags` from BTF: (name without `PG_`, bit number), e.g. ("reserved", 10).
    pub flags: Vec<(String, u8)>,
    /// `enum pagetype` from BTF (6.12 and later: the top byte of `page_type`), as (name
    /// without `PGTY_`, value); empty on kernels that encode page types as cleared bits (6.1).
    pub page_types: Vec<(String, u8)>,
    /// Bit where the node number starts in `page->flags` and its width.
    pub node_shift: u8,
    pub node_bits: u8,
    /// Bit where the zone index starts in `page->flags` and its width.
    pub zone_shift: u8,
    pub zone_bits: u8,
}

/// What kind of page stood in the way, most telling first: why it cannot be moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PageWhat {
    /// PG_reserved: memblock/boot allocations, the memmap itself.
    Reserved,
    /// Slab (kernel objects: dentries, inodes, ...).
    Slab,
    /// A page table.
    PageTable,
    /// A hugetlb page.
    Hugetlb,
    /// Pinned for DMA (refcount at or above GUP_PIN_COUNTING_BIAS): long-term pinned.
    Pinned,
    /// Free, in the buddy allocator.
    Buddy,
    /// Logically offline (balloon, virtio-mem).
    Offline,
    /// Part of a compound page that is not on the LRU.
    Compound,
    /// A user or page-cache page on the LRU (movable).
    Lru,
    /// Another kernel allocation.
    Kernel,
}

/// A dumped page decoded with the kernel's own flag numbering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PageInfo {
    /// Set PG_* flags, named as dump_page prints them.
    pub flags: Vec<String>,
    /// The page type (6.12 and later: `PGTY_*`; 6.1: buddy, offline, table, guard).
    pub page_type: Option<String>,
    pub node: u32,
    pub zone: u8,
    pub what: PageWhat,
    /// The mapcount as dump_page prints it: `_mapcount + 1`, and 0 for a page whose word holds
    /// a page type instead (6.12 and later), or a slab page (6.1).
    pub mapcount: i32,
}

/// `GUP_PIN_COUNTING_BIAS`: each FOLL_PIN adds this to a small page's refcount.
const GUP_PIN_COUNTING_BIAS: i32 = 1024;

/// 6.1's page types: cleared bits under PAGE_TYPE_BASE.
const V61_TYPES: [(u32, &str); 4] = [
    (0x80, "buddy"),
    (0x100, "offline"),
    (0x200, "table"),
    (0x400, "guard"),
];
const PAGE_TYPE_BASE: u32 = 0xf000_0000;

impl PageFlagsLayout {
    /// `mapcount` is the raw `_mapcount` word (it shares its place with `page_type`).
    pub fn decode(&self, flags: u64, page_type: u32, refcount: i32, mapcount: i32) -> PageInfo {
        let set: Vec<String> = self
            .flags
            .iter()
            .filter(|(_, bit)| (*bit as u32) < 64 && flags & (1u64 << bit) != 0)
            .map(|(n, _)| n.clone())
            .collect();
        let ty = self.page_type_name(page_type);
        let field = |shift: u8, bits: u8| {
            if bits == 0 || shift >= 64 {
                0
            } else {
                (flags >> shift) & ((1u64 << bits.min(63)) - 1)
            }
        };
        let has = |n: &str| set.iter().any(|f| f == n);
        let is_type = |n: &str| ty.as_deref() == Some(n);
        let what = if has("reserved") {
            PageWhat::Reserved
        } else if has("slab") || is_type("slab") {
            PageWhat::Slab
        } else if is_type("table") {
            PageWhat::PageTable
        } else if is_type("hugetlb") {
            PageWhat::Hugetlb
        } else if refcount >= GUP_PIN_COUNTING_BIAS {
            PageWhat::Pinned
        } else if is_type("buddy") {
            PageWhat::Buddy
        } else if is_type("offline") {
            PageWhat::Offline
        } else if has("lru") {
            PageWhat::Lru
        } else if has("head") {
            PageWhat::Compound
        } else {
            PageWhat::Kernel
        };
        let typed = if self.page_types.is_empty() {
            has("slab")
        } else {
            // page_mapcount_is_type(): the word holds a type, not a count.
            (page_type as i32) < (0xff00_0000u32 as i32)
        };
        PageInfo {
            mapcount: if typed { 0 } else { mapcount.saturating_add(1) },
            flags: set,
            page_type: ty,
            node: field(self.node_shift, self.node_bits) as u32,
            zone: field(self.zone_shift, self.zone_bits) as u8,
            what,
        }
    }

    fn page_type_name(&self, page_type: u32) -> Option<String> {
        if self.page_types.is_empty() {
            // 6.1: a type is a cleared bit under the base; 0xffffffff is none.
            if page_type & PAGE_TYPE_BASE != PAGE_TYPE_BASE {
                return None;
            }
            return V61_TYPES
                .iter()
                .find(|(bit, _)| page_type & bit == 0)
                .map(|(_, n)| n.to_string());
        }
        // 6.12 and later: the type in the top byte; 0xff (mapcount underflow) is none.
        let top = (page_type >> 24) as u8;
        if (page_type as i32) >= (0xff00_0000u32 as i32) {
            return None;
        }
        self.page_types
            .iter()
            .find(|(_, v)| *v == top)
            .map(|(n, _)| n.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 6.1's numbering (its BTF `enum pageflags`), 10 node bits, 3 zone bits.
    fn v61() -> PageFlagsLayout {
        let names = [
            "locked",
            "referenced",
            "uptodate",
            "dirty",
            "lru",
            "active",
            "workingset",
            "waiters",
            "error",
            "slab",
            "owner_priv_1",
            "arch_1",
            "reserved",
            "private",
            "private_2",
            "writeback",
            "head",
        ];
        PageFlagsLayout {
            flags: names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), i as u8))
                .collect(),
            page_types: vec![],
            node_shift: 54,
            node_bits: 10,
            zone_shift: 51,
            zone_bits: 3,
        }
    }

    fn v612() -> PageFlagsLayout {
        let flags = [
            ("locked", 0),
            ("writeback", 1),
            ("referenced", 2),
            ("lru", 5),
            ("head", 6),
            ("reserved", 13),
        ];
        let types = [
            ("buddy", 0xf0),
            ("offline", 0xf1),
            ("table", 0xf2),
            ("guard", 0xf3),
            ("hugetlb", 0xf4),
            ("slab", 0xf5),
        ];
        PageFlagsLayout {
            flags: flags.iter().map(|(n, b)| (n.to_string(), *b)).collect(),
            page_types: types.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            node_shift: 54,
            node_bits: 10,
            zone_shift: 51,
            zone_bits: 3,
        }
    }

    #[test]
    fn a_reserved_boot_page_on_node_0_dma32() {
        // dump_page on 6.1: "flags: 0x1000(reserved|node=0|zone=1)" with zone bits set.
        let flags = (1u64 << 12) | (1u64 << 51);
        let p = v61().decode(flags, 0xffff_ffff, 1, -1);
        assert_eq!(p.flags, vec!["reserved"]);
        assert_eq!((p.node, p.zone, p.what), (0, 1, PageWhat::Reserved));
        assert_eq!(p.page_type, None);
    }

    #[test]
    fn slab_is_a_flag_on_61_and_a_type_on_612() {
        let on61 = v61().decode((1 << 9) | (1u64 << 54) | (2u64 << 51), 0xffff_ffff, 1, -1);
        assert_eq!((on61.what, on61.node, on61.zone), (PageWhat::Slab, 1, 2));
        let on612 = v612().decode(2u64 << 51, 0xf500_0000, 1, -1);
        assert_eq!(on612.page_type.as_deref(), Some("slab"));
        assert_eq!(on612.what, PageWhat::Slab);
    }

    #[test]
    fn page_types_per_scheme() {
        // 6.1: buddy clears 0x80 under the base.
        assert_eq!(v61().decode(0, 0xffff_ff7f, 0, -1).what, PageWhat::Buddy);
        assert_eq!(v61().decode(0, 0xffff_fdff, 1, -1).what, PageWhat::PageTable);
        // A mapcount (no type) is not a type.
        assert_eq!(v61().decode(1 << 4, 0, 2, -1).what, PageWhat::Lru);
        assert_eq!(v612().decode(0, 0xf000_0000, 0, -1).what, PageWhat::Buddy);
        assert_eq!(v612().decode(0, 0xffff_ffff, 1, -1).page_type, None);
        assert_eq!(v612().decode(0, 0, 1, -1).page_type, None);
    }

    #[test]
    fn mapcount_as_dump_page_prints_it() {
        // 6.12: a slab page's word is its type: dump_page prints mapcount:0.
        assert_eq!(
            v612().decode(0, 0xf500_0000, 1, 0xf500_0000u32 as i32).mapcount,
            0
        );
        // An unmapped page (-1) prints 0, a page mapped twice (1) prints 2.
        assert_eq!(v612().decode(1 << 5, 0xffff_ffff, 1, -1).mapcount, 0);
        assert_eq!(v612().decode(1 << 5, 1, 3, 1).mapcount, 2);
        // 6.1: slab is a flag, and dump_page prints 0 for it.
        assert_eq!(v61().decode(1 << 9, 5, 1, 5).mapcount, 0);
        assert_eq!(v61().decode(1 << 4, 0, 1, 0).mapcount, 1);
    }

    #[test]
    fn pinned_pages_by_their_refcount() {
        assert_eq!(
            v612().decode(1 << 5, 0xffff_ffff, 1025, -1).what,
            PageWhat::Pinned
        );
        assert_eq!(v612().decode(1 << 5, 0xffff_ffff, 3, -1).what, PageWhat::Lru);
    }
}
