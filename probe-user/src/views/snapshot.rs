//! The report document of a stream as of its last update, for a view that redraws often
//! (`top`: a resize, a key): built again only after an update changed the stream.
use std::{cell::RefCell, sync::Arc};

use crate::recording::stream::Stream;
use crate::views::answers::Thresholds;
use crate::views::report::Document;

#[derive(Debug, Default)]
pub struct Snapshots {
    thresholds: Thresholds,
    /// The stream's generation it was built at, and the document.
    cached: RefCell<Option<(u64, Arc<Document>)>>,
}

impl Snapshots {
    pub fn new(thresholds: Thresholds) -> Snapshots {
        Snapshots {
            thresholds,
            cached: RefCell::new(None),
        }
    }

    /// None before the stream's header.
    pub fn get(&self, stream: &Stream) -> Option<Arc<Document>> {
        let mut cache = self.cached.borrow_mut();
        if let Some((generation, doc)) = cache.as_ref() {
            if *generation == stream.generation() {
                return Some(doc.clone());
            }
        }
        let doc = Arc::new(Document::of_stream(stream, self.thresholds)?);
        *cache = Some((stream.generation(), doc.clone()));
        Some(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::stream::Update;
    use crate::recording::{Item, Reader};

    #[test]
    fn a_snapshot_is_built_again_only_after_an_update() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hotplug-6.1.ndjson");
        let mut reader = Reader::open(&path).unwrap();
        let mut stream = Stream::new("t");
        let snapshots = Snapshots::default();
        assert!(snapshots.get(&stream).is_none(), "nothing before the header");
        stream.apply(Update::Header(Box::new(reader.header().unwrap())));
        let first = snapshots.get(&stream).unwrap();
        assert!(
            Arc::ptr_eq(&first, &snapshots.get(&stream).unwrap()),
            "no update: the same one"
        );
        let Some(Item::Event(ev)) = reader.next_item().unwrap() else {
            panic!("an event after the header")
        };
        stream.apply(Update::Event(ev));
        let second = snapshots.get(&stream).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!((first.events, second.events), (0, 1));
    }
}
