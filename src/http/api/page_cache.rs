//! Pages of the daily table (`GET /api/v1/days/{date}`) kept once built.
//!
//! A page of every employee is megabytes of JSON that the database writes
//! anew for each request. Each page built is kept with the two counters it
//! was built under ([`crate::store::Store::day_revision`]: the date's
//! verdicts and the employees, raised in the transaction of every write of
//! them); a request whose counters are the same gets the kept bytes. The counters
//! are read before the page, so a write in between makes the kept page
//! look older than it is (built again next time), never newer.
//!
//! Bounded: at most `max_bytes` of pages (`[http] page_cache_mib`) and
//! [`MAX_PAGES`] pages; the least recently served goes first. A page larger
//! than half the bound is not kept. `max_bytes` 0 keeps nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use chrono::NaiveDate;

/// Most pages kept, whatever their size.
pub const MAX_PAGES: usize = 256;

/// What a page answers: its date, filters and window.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PageKey {
    pub date: NaiveDate,
    pub team: Option<String>,
    pub status: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

impl PageKey {
    /// Bytes an entry costs beside its page.
    fn overhead(&self) -> usize {
        128 + self.team.as_ref().map_or(0, String::len)
            + self.status.as_ref().map_or(0, String::len)
    }
}

struct Entry {
    revision: (i64, i64),
    body: Bytes,
    used: u64,
}

#[derive(Default)]
struct Inner {
    pages: HashMap<PageKey, Entry>,
    bytes: usize,
    tick: u64,
}

/// The kept pages (see the module).
pub(crate) struct PageCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (pages, bytes) = self.size();
        f.debug_struct("PageCache")
            .field("max_bytes", &self.max_bytes)
            .field("pages", &pages)
            .field("bytes", &bytes)
            .finish()
    }
}

impl PageCache {
    /// Keeps up to `max_bytes` of pages (0: none).
    pub fn new(max_bytes: usize) -> PageCache {
        PageCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether pages are kept at all.
    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The page kept for `key` if it was built under `revision`. A page
    /// built under other counters is dropped.
    pub fn get(&self, key: &PageKey, revision: (i64, i64)) -> Option<Bytes> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        match inner.pages.get_mut(key) {
            Some(e) if e.revision == revision => {
                e.used = tick;
                Some(e.body.clone())
            }
            Some(_) => {
                if let Some(old) = inner.pages.remove(key) {
                    inner.bytes -= old.body.len() + key.overhead();
                }
                None
            }
            None => None,
        }
    }

    /// Keeps `body` for `key`, built under `revision`, making room by
    /// dropping the least recently served pages.
    pub fn put(&self, key: PageKey, revision: (i64, i64), body: Bytes) {
        let cost = body.len() + key.overhead();
        if cost > self.max_bytes / 2 {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.pages.remove(&key) {
            inner.bytes -= old.body.len() + key.overhead();
        }
        while !inner.pages.is_empty()
            && (inner.bytes + cost > self.max_bytes || inner.pages.len() >= MAX_PAGES)
        {
            let Some(oldest) = inner
                .pages
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.pages.remove(&oldest) {
                inner.bytes -= e.body.len() + oldest.overhead();
            }
        }
        inner.tick += 1;
        let used = inner.tick;
        inner.bytes += cost;
        inner.pages.insert(
            key,
            Entry {
                revision,
                body,
                used,
            },
        );
    }

    /// Pages kept and the bytes they cost.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.pages.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(offset: usize) -> PageKey {
        PageKey {
            date: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            team: None,
            status: None,
            limit: 100,
            offset,
        }
    }

    #[test]
    fn a_page_is_served_only_under_the_counters_it_was_built_under() {
        let c = PageCache::new(1 << 20);
        c.put(key(0), (1, 1), Bytes::from_static(b"[1]"));
        assert_eq!(c.get(&key(0), (1, 1)).as_deref(), Some(&b"[1]"[..]));
        assert_eq!(c.get(&key(0), (2, 1)), None, "verdicts changed");
        assert_eq!(c.size().0, 0, "the stale page is dropped");
        c.put(key(0), (2, 1), Bytes::from_static(b"[2]"));
        assert_eq!(c.get(&key(0), (2, 2)), None, "employees changed");
        assert_eq!(c.get(&key(1), (2, 1)), None, "another window");
    }

    #[test]
    fn a_flood_of_pages_stays_within_the_bound_and_keeps_the_recent_ones() {
        let max = 64 * 1024;
        let c = PageCache::new(max);
        let page = Bytes::from(vec![b'x'; 1000]);
        for i in 0..10_000 {
            c.put(key(i), (1, 1), page.clone());
            // The first page stays in use, so it stays.
            assert!(c.get(&key(0), (1, 1)).is_some(), "page 0 after {i}");
            let (pages, bytes) = c.size();
            assert!(bytes <= max, "{bytes} > {max}");
            assert!(pages <= MAX_PAGES, "{pages}");
        }
        assert!(c.get(&key(9_999), (1, 1)).is_some());
        assert!(c.get(&key(5), (1, 1)).is_none());
        // Many tiny pages are bounded by their number.
        let c = PageCache::new(1 << 30);
        for i in 0..10_000 {
            c.put(key(i), (1, 1), Bytes::from_static(b"[]"));
        }
        assert_eq!(c.size().0, MAX_PAGES);
    }

    #[test]
    fn nothing_is_kept_without_room() {
        let c = PageCache::new(0);
        assert!(!c.enabled());
        c.put(key(0), (1, 1), Bytes::from_static(b"[]"));
        assert_eq!(c.size(), (0, 0));
        let c = PageCache::new(1000);
        c.put(key(0), (1, 1), Bytes::from(vec![0; 600]));
        assert_eq!(c.size().0, 0, "larger than half the bound");
    }
}
