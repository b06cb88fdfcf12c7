//! The registry cache: lookups, bounds, statistics, selective
//! invalidation on reload, and the last valid version kept through a
//! broken edit.

mod registry_support;

use std::path::Path;
use std::sync::Arc;

use registry_support::TempDir;

use mechops_std::registry::{CacheConfig, LookupError, RegistryCache, WatchMode};

/// A registry of `n` command scripts whose `description` carries `tag`.
fn registry(n: usize, tag: &str) -> String {
    let scripts: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id": "s{i}", "kind": "command", "description": "{tag}", "command": ["echo", "{{x}}"],
                    "arguments": {{"x": {{"type": "string", "default": "v{i}"}}}}}}"#
            )
        })
        .collect();
    format!(r#"{{"version": 1, "scripts": [{}]}}"#, scripts.join(",\n"))
}

fn open(path: &Path, entries: usize) -> Arc<RegistryCache> {
    RegistryCache::open(
        path,
        CacheConfig::new(entries, 64 << 20).with_watch(WatchMode::Off),
    )
    .unwrap()
}

#[test]
fn hits_misses_and_unknown_ids() {
    let dir = TempDir::new("basic");
    std::fs::write(dir.file(), registry(10, "a")).unwrap();
    let cache = open(&dir.file(), 100);
    assert_eq!(cache.base_dir(), dir.0);
    let first = cache.get("s3").unwrap();
    let again = cache.get("s3").unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "a hit serves the same parsed script"
    );
    assert_eq!(first.description, "a");
    let e = cache.get("nope").unwrap_err();
    assert!(matches!(e, LookupError::UnknownScript { .. }));
    assert_eq!(e.to_string(), r#"unknown script "nope""#);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.evictions), (1, 2, 0));
    assert!((s.hit_rate - 1.0 / 3.0).abs() < 1e-9);
    assert!(s.memory_usage >= first.memory_bytes() as u64);
    assert_eq!(cache.list().len(), 10);
    assert_eq!(cache.list()[2].id, "s2");
    assert!(cache.contains("s9"));
    let v = serde_json::to_value(cache.stats()).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "evictions",
            "hit_rate",
            "hits",
            "memory_usage",
            "misses",
            "reload_errors",
            "reloads"
        ]
    );
}

#[test]
fn the_count_and_byte_bounds_hold() {
    let dir = TempDir::new("bounds");
    std::fs::write(dir.file(), registry(300, "a")).unwrap();
    let cache = open(&dir.file(), 20);
    for i in 0..300 {
        cache.get(&format!("s{i}")).unwrap();
    }
    assert!(cache.cached_len() <= 20, "{}", cache.cached_len());
    assert!(cache.stats().evictions >= 280);

    let one = cache.get("s0").unwrap().memory_bytes() as u64;
    let small = RegistryCache::open(
        dir.file(),
        CacheConfig::new(1000, one * 8).with_watch(WatchMode::Off),
    )
    .unwrap();
    for i in 0..300 {
        small.get(&format!("s{i}")).unwrap();
        assert!(small.stats().memory_usage <= one * 8 + 64);
    }
    assert!(small.cached_len() <= 8);
}

#[test]
fn config_from_the_environment() {
    let c = CacheConfig::from_vars(|_| None).unwrap();
    assert_eq!((c.max_entries, c.max_memory_bytes), (100, 64 << 20));
    let c = CacheConfig::from_vars(|v| match v {
        "CACHE_SIZE" => Some("5".into()),
        "CACHE_MEMORY_MB" => Some("2".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!((c.max_entries, c.max_memory_bytes), (5, 2 << 20));
    let e = CacheConfig::from_vars(|v| (v == "CACHE_SIZE").then(|| "ten".to_owned())).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"CACHE_SIZE="ten": expected a number of entries, a positive whole number"#
    );
    let e =
        CacheConfig::from_vars(|v| (v == "CACHE_MEMORY_MB").then(|| "0".to_owned())).unwrap_err();
    assert_eq!(e.to_string(), r#"CACHE_MEMORY_MB="0": must be at least 1"#);
    let e =
        CacheConfig::from_vars(|v| (v == "CACHE_MEMORY_MB").then(|| "-3".to_owned())).unwrap_err();
    assert!(e.to_string().starts_with("CACHE_MEMORY_MB"));
}

#[test]
fn only_changed_entries_are_invalidated() {
    let dir = TempDir::new("selective");
    std::fs::write(dir.file(), registry(5, "a")).unwrap();
    let cache = open(&dir.file(), 100);
    let before: Vec<_> = (0..5)
        .map(|i| cache.get(&format!("s{i}")).unwrap())
        .collect();
    // s2 changes, s4 goes, s5 comes.
    let text = registry(5, "a")
        .replace(
            r#""id": "s2", "kind": "command", "description": "a""#,
            r#""id": "s2", "kind": "command", "description": "b""#,
        )
        .replace(r#""id": "s4""#, r#""id": "s5""#);
    std::fs::write(dir.file(), text).unwrap();
    let report = cache.reload_now().unwrap();
    assert_eq!(report.changed, ["s2"]);
    assert_eq!(report.removed, ["s4"]);
    assert_eq!(report.added, ["s5"]);
    assert!(!report.full);
    assert_eq!(cache.generation(), 2);
    for i in [0, 1, 3] {
        assert!(
            Arc::ptr_eq(&before[i], &cache.get(&format!("s{i}")).unwrap()),
            "s{i} kept"
        );
    }
    assert_eq!(cache.get("s2").unwrap().description, "b");
    assert!(matches!(
        cache.get("s4"),
        Err(LookupError::UnknownScript { .. })
    ));
    assert!(cache.get("s5").is_ok());
    assert_eq!(cache.stats().reloads, 1);
    // The same bytes again: nothing to reload.
    let report = cache.reload_now().unwrap();
    assert!(!report.changed_file);
    assert_eq!(cache.stats().reloads, 1);
}

#[test]
fn a_pools_change_drops_everything() {
    let dir = TempDir::new("pools");
    let with_pool = |url: &str| {
        format!(
            r#"{{"version": 1, "scripts": [{{"id": "q", "kind": "sql", "pool": "main", "query": "SELECT 1"}}],
                "pools": {{"main": {{"url": "{url}"}}}}}}"#
        )
    };
    std::fs::write(dir.file(), with_pool("postgres://a")).unwrap();
    let cache = open(&dir.file(), 100);
    let before = cache.get("q").unwrap();
    std::fs::write(dir.file(), with_pool("postgres://b")).unwrap();
    assert!(cache.reload_now().unwrap().full);
    assert!(!Arc::ptr_eq(&before, &cache.get("q").unwrap()));
    assert_eq!(cache.pools()["main"].url, "postgres://b");
}

#[test]
fn a_broken_edit_keeps_the_last_valid_version() {
    let dir = TempDir::new("broken");
    std::fs::write(dir.file(), registry(3, "a")).unwrap();
    let cache = open(&dir.file(), 100);
    std::fs::write(
        dir.file(),
        registry(3, "b").replace(r#""id": "s1""#, r#""id": "s0""#),
    )
    .unwrap();
    let e = cache.reload_now().unwrap_err();
    assert!(e.to_string().contains("duplicate id"), "{e}");
    assert_eq!(
        cache.get("s1").unwrap().description,
        "a",
        "still the last valid version"
    );
    assert_eq!(cache.stats().reload_errors, 1);
    assert!(cache.last_error().unwrap().contains("duplicate id"));
    std::fs::write(dir.file(), "{ not json").unwrap();
    assert!(cache.reload_now().is_err());
    assert!(cache.last_error().unwrap().starts_with("line 1, column 3"));
    std::fs::remove_file(dir.file()).unwrap();
    assert!(cache.reload_now().is_err());
    assert!(cache.last_error().unwrap().contains("cannot read registry"));
    assert_eq!(cache.stats().reload_errors, 3);
    assert_eq!(cache.get("s2").unwrap().description, "a");
    std::fs::write(dir.file(), registry(3, "c")).unwrap();
    cache.reload_now().unwrap();
    assert_eq!(cache.last_error(), None);
    assert_eq!(cache.get("s2").unwrap().description, "c");
}

#[test]
fn an_invalid_file_cannot_be_opened() {
    let dir = TempDir::new("invalid");
    std::fs::write(dir.file(), "[]").unwrap();
    let e = RegistryCache::open(dir.file(), CacheConfig::default()).unwrap_err();
    assert!(e.to_string().starts_with("line 1, column 1"), "{e}");
}

#[test]
fn lookups_racing_reloads_never_serve_a_replaced_entry() {
    let dir = TempDir::new("race");
    std::fs::write(dir.file(), registry(50, "v0")).unwrap();
    let cache = open(&dir.file(), 100);
    let stop = Arc::new(core::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let (cache, stop) = (Arc::clone(&cache), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = t;
                while !stop.load(core::sync::atomic::Ordering::Relaxed) {
                    cache.get(&format!("s{}", i % 50)).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    for round in 1..=30 {
        std::fs::write(dir.file(), registry(50, &format!("v{round}"))).unwrap();
        cache.reload_now().unwrap();
    }
    stop.store(true, core::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    for i in 0..50 {
        assert_eq!(
            cache.get(&format!("s{i}")).unwrap().description,
            "v30",
            "s{i}"
        );
    }
}

#[test]
fn reload_listeners_are_removed_when_their_subscription_drops() {
    use core::sync::atomic::{AtomicUsize, Ordering};
    let dir = TempDir::new("listeners");
    std::fs::write(dir.file(), registry(3, "a")).unwrap();
    let cache = open(&dir.file(), 100);
    let (kept, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let k = Arc::clone(&kept);
    let _kept = cache.on_reload(move |_| {
        k.fetch_add(1, Ordering::SeqCst);
    });
    let d = Arc::clone(&dropped);
    let gone = cache.on_reload(move |_| {
        d.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(cache.reload_listeners(), 2);
    std::fs::write(dir.file(), registry(3, "b")).unwrap();
    cache.reload_now().unwrap();
    assert_eq!(
        (kept.load(Ordering::SeqCst), dropped.load(Ordering::SeqCst)),
        (1, 1)
    );
    drop(gone);
    assert_eq!(cache.reload_listeners(), 1);
    std::fs::write(dir.file(), registry(3, "c")).unwrap();
    cache.reload_now().unwrap();
    assert_eq!(
        (kept.load(Ordering::SeqCst), dropped.load(Ordering::SeqCst)),
        (2, 1),
        "a dropped subscription's listener is not called"
    );
    // The closure (and what it holds) is freed with its subscription.
    assert_eq!(Arc::strong_count(&dropped), 1);
    // A subscription outliving its cache drops quietly.
    let late = cache.on_reload(|_| {});
    drop(cache);
    drop(late);
}

#[test]
fn a_scripts_json_is_made_once_and_kept_with_the_cached_entry() {
    let dir = TempDir::new("json");
    std::fs::write(dir.file(), registry(2, "a")).unwrap();
    let cache = open(&dir.file(), 100);
    let script = cache.get("s1").unwrap();
    let json = script.json();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        serde_json::to_value(&*script).unwrap(),
        "the text is the script's serialization"
    );
    assert!(
        Arc::ptr_eq(&json, &cache.get("s1").unwrap().json()),
        "a hit serves the text made when the entry was cached"
    );
    // The cache weighs the text with the entry.
    assert!(script.memory_bytes() >= json.len());
    assert_eq!(
        cache.stats().memory_usage,
        (2 + script.memory_bytes()) as u64
    );
    // A reload that changes the entry drops its text with it.
    std::fs::write(dir.file(), registry(2, "b")).unwrap();
    cache.reload_now().unwrap();
    let fresh = cache.get("s1").unwrap().json();
    assert!(
        fresh.contains("\"b\"") && !Arc::ptr_eq(&fresh, &json),
        "{fresh}"
    );
}
