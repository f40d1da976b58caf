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
