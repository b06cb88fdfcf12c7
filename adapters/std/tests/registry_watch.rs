//! Watching the registry file: edits in place, replacement by rename,
//! deletion and re-creation, a broken edit and its fix, each seen by the
//! notification watcher and by the poller.
//!
//! Each test waits for the change with a polling loop bounded by a
//! generous overall timeout: it fails only if the change is never seen.

mod registry_support;

use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use registry_support::TempDir;

use mechops_std::registry::{CacheConfig, RegistryCache, WatchMode};

fn registry(tag: &str) -> String {
    format!(
        r#"{{"version": 1, "scripts": [
            {{"id": "a", "kind": "command", "description": "{tag}", "command": ["true"]}},
            {{"id": "b", "kind": "command", "description": "fixed", "command": ["true"]}}]}}"#
    )
}

/// Waits until `cond` holds; panics with `what` after 20 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "never saw: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn description(cache: &RegistryCache) -> String {
    cache.get("a").unwrap().description.clone()
}

fn modes() -> [(&'static str, WatchMode); 2] {
    [
        ("notify", WatchMode::Notify),
        ("poll", WatchMode::Poll(Duration::from_millis(50))),
    ]
}

fn open(name: &str, mode: WatchMode) -> (TempDir, Arc<RegistryCache>) {
    let dir = TempDir::new(name);
    std::fs::write(dir.file(), registry("v1")).unwrap();
    let cache = RegistryCache::open(dir.file(), CacheConfig::default().with_watch(mode)).unwrap();
    assert_eq!(description(&cache), "v1");
    (dir, cache)
}

#[test]
fn edits_in_place_are_seen() {
    for (name, mode) in modes() {
        let (dir, cache) = open(&format!("inplace-{name}"), mode);
        if name == "notify" {
            assert_eq!(cache.watch_status(), "notify");
        }
        let b = cache.get("b").unwrap();
        std::fs::write(dir.file(), registry("v2")).unwrap();
        wait_for("the edit in place", || description(&cache) == "v2");
        assert!(
            Arc::ptr_eq(&b, &cache.get("b").unwrap()),
            "{name}: b did not change"
        );
        assert!(cache.stats().reloads >= 1);
    }
}

#[test]
fn replacement_by_rename_is_seen() {
    for (name, mode) in modes() {
        let (dir, cache) = open(&format!("rename-{name}"), mode);
        for round in 2..5 {
            let tmp = dir.0.join(".registry.json.swp");
            std::fs::write(&tmp, registry(&format!("v{round}"))).unwrap();
            std::fs::rename(&tmp, dir.file()).unwrap();
            let want = format!("v{round}");
            wait_for("the replacement by rename", || description(&cache) == want);
        }
    }
}

#[test]
fn deletion_then_recreation_is_seen() {
    for (name, mode) in modes() {
        let (dir, cache) = open(&format!("recreate-{name}"), mode);
        std::fs::remove_file(dir.file()).unwrap();
        // While the file is gone the last version serves, and the error
        // is reported once the watcher has looked.
        wait_for("the deletion reported", || cache.last_error().is_some());
        assert_eq!(description(&cache), "v1");
        std::fs::write(dir.file(), registry("v2")).unwrap();
        wait_for("the re-created file", || description(&cache) == "v2");
        assert_eq!(cache.last_error(), None);
    }
}

#[test]
fn a_broken_edit_keeps_serving_until_fixed() {
    for (name, mode) in modes() {
        let (dir, cache) = open(&format!("broken-{name}"), mode);
        std::fs::write(
            dir.file(),
            registry("v2").replace(r#""id": "b""#, r#""id": "a""#),
        )
        .unwrap();
        wait_for("the broken edit reported", || {
            cache.stats().reload_errors >= 1
        });
        assert!(
            cache.last_error().unwrap().contains("duplicate id"),
            "{name}"
        );
        assert_eq!(description(&cache), "v1");
        std::fs::write(dir.file(), registry("v3")).unwrap();
        wait_for("the fix", || description(&cache) == "v3");
        assert_eq!(cache.last_error(), None);
    }
}

#[test]
fn dropping_the_cache_stops_its_watcher() {
    for (name, mode) in modes() {
        let (dir, cache) = open(&format!("drop-{name}"), mode);
        let weak = Arc::downgrade(&cache);
        drop(cache);
        // A poller may hold it for the length of one look.
        wait_for("the cache dropped", || weak.upgrade().is_none());
        // Changes after the drop reach nobody and break nothing.
        std::fs::write(dir.file(), registry("v2")).unwrap();
    }
}
