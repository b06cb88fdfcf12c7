//! Registry lookups: mechops' `RegistryCache` against `moka` and a plain
//! `HashMap`, and cold lookups of one script in a 1 000-entry registry.
//!
//! - warm: every map holds the same 100 parsed scripts as `Arc<Script>`
//!   and looks up the same pseudo-random sequence of ids, returning a clone
//!   of the `Arc` (moka's sync `Cache::get`, `HashMap::get` + clone as the
//!   floor without any locking, bounds or statistics);
//! - cold, from the file: `Registry::load_script` reads the file, indexes
//!   all 1 000 entries (JSON syntax, ids, pools) and parses and validates
//!   the one asked for; beside it `Registry::load`, which parses and
//!   validates all of them;
//! - cold, cache miss: the file is indexed in memory, the entry is dropped
//!   from the LRU and looked up again (parse and validate one entry);
//! - open: `RegistryCache::open`, indexing and validating the whole file.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mechops_std::registry::{CacheConfig, Registry, RegistryCache, Script, WatchMode};

const ENTRIES: usize = 1000;
const WARM: usize = 100;
const LOOKUPS: usize = 1024;

/// A registry of `n` scripts of the three kinds, shaped like the
/// format's example (210 to 510 bytes each).
fn registry_text(n: usize) -> String {
    let scripts: Vec<String> = (0..n)
        .map(|i| match i % 3 {
            0 => format!(
                r#"{{"id": "resize-{i}", "name": "Resize images {i}", "description": "Resizes the images of a folder",
  "tags": ["media", "batch"], "kind": "command",
  "command": ["python3", "scripts/resize.py", "--width", "{{width}}", "{{folder}}"],
  "env": {{"QUALITY": "high"}}, "workdir": ".", "timeout_ms": 60000,
  "arguments": {{"width": {{"type": "integer", "required": false, "default": 800, "description": "target width"}},
                "folder": {{"type": "string", "required": true, "description": "folder to process"}}}}}}"#
            ),
            1 => format!(
                r#"{{"id": "status-{i}", "kind": "http", "method": "GET", "url": "http://127.0.0.1:9000/status/{{service}}",
  "headers": {{"X-Team": "{{team}}"}}, "body": null, "timeout_ms": 5000,
  "arguments": {{"service": {{"type": "string", "required": true}}, "team": {{"type": "string", "default": "ops"}}}}}}"#
            ),
            _ => format!(
                r#"{{"id": "count-{i}", "kind": "sql", "pool": "main", "query": "SELECT count(*) FROM users WHERE team = $1",
  "params": ["{{team}}"], "timeout_ms": 5000, "arguments": {{"team": {{"type": "string", "required": true}}}}}}"#
            ),
        })
        .collect();
    format!(
        "{{\"version\": 1, \"scripts\": [\n{}\n],\n\"pools\": {{\"main\": {{\"url\": \"postgres://app@127.0.0.1:5432/app\", \"max_connections\": 20}}}}}}\n",
        scripts.join(",\n")
    )
}

fn id_of(i: usize) -> String {
    match i % 3 {
        0 => format!("resize-{i}"),
        1 => format!("status-{i}"),
        _ => format!("count-{i}"),
    }
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench_registry(c: &mut Criterion) {
    let dir = Scratch(
        std::env::temp_dir().join(format!("mechops-bench-registry-{}", std::process::id())),
    );
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("registry.json");
    std::fs::write(&path, registry_text(ENTRIES)).unwrap();

    // Warm: the same 100 scripts in each map.
    let cache =
        RegistryCache::open(&path, CacheConfig::default().with_watch(WatchMode::Off)).unwrap();
    let ids: Vec<String> = (0..WARM).map(|i| id_of(i * 7)).collect();
    let moka: moka::sync::Cache<String, Arc<Script>> = moka::sync::Cache::new(WARM as u64 * 2);
    let mut plain: HashMap<String, Arc<Script>> = HashMap::new();
    for id in &ids {
        let s = cache.get(id).unwrap();
        moka.insert(id.clone(), Arc::clone(&s));
        plain.insert(id.clone(), s);
    }
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let order: Vec<&str> = (0..LOOKUPS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ids[(state % WARM as u64) as usize].as_str()
        })
        .collect();

    let mut g = c.benchmark_group("registry/warm get (per lookup x1024)");
    g.bench_function("mechops RegistryCache", |b| {
        b.iter(|| {
            for id in &order {
                black_box(cache.get(black_box(id)).unwrap());
            }
        });
    });
    g.bench_function("moka sync Cache", |b| {
        b.iter(|| {
            for id in &order {
                black_box(moka.get(black_box(*id)).unwrap());
            }
        });
    });
    g.bench_function("HashMap (no lock)", |b| {
        b.iter(|| {
            for id in &order {
                black_box(Arc::clone(plain.get(black_box(*id)).unwrap()));
            }
        });
    });
    g.finish();
    let stats = cache.stats();
    eprintln!(
        "registry cache after the warm runs: {} hits, {} misses (the 100 warm scripts stay cached)",
        stats.hits, stats.misses
    );

    let target = id_of(ENTRIES / 2);
    let mut g = c.benchmark_group("registry/cold lookup, 1000 entries");
    g.bench_function("miss: parse one indexed entry", |b| {
        b.iter(|| {
            cache.invalidate(&target);
            black_box(cache.get(black_box(&target)).unwrap());
        });
    });
    g.bench_function("load_script: read, index, parse one", |b| {
        b.iter(|| black_box(Registry::load_script(black_box(&path), &target).unwrap()));
    });
    g.bench_function("Registry::load: parse all", |b| {
        b.iter(|| black_box(Registry::load(black_box(&path)).unwrap()));
    });
    g.bench_function("RegistryCache::open: index, validate all", |b| {
        b.iter(|| {
            black_box(
                RegistryCache::open(&path, CacheConfig::default().with_watch(WatchMode::Off))
                    .unwrap(),
            )
        });
    });
    g.finish();
}

criterion_group!(benches, bench_registry);
criterion_main!(benches);
