//! The Redis registry tier against a real `redis-server` of the test's
//! own: two tiers with separate connections and separate copies of the
//! registry file share entries and invalidations; late messages and slow
//! processes cannot bring stale entries back; a lost subscription flushes
//! the near cache.

mod support;

use core::time::Duration;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mechops_std::registry::{CacheConfig, RegistryCache, WatchMode};
use mechops_tokio::registry_tier::{RegistryTier, TierConfig, TierStats};
use support::redis_server::{Persistence, RedisServer};

fn registry(tag: &str) -> String {
    format!(
        r#"{{"version": 1, "scripts": [
            {{"id": "a", "kind": "command", "description": "{tag}", "command": ["true"]}},
            {{"id": "b", "kind": "command", "description": "b", "command": ["true"]}},
            {{"id": "c", "kind": "sql", "pool": "main", "query": "SELECT 1"}}],
          "pools": {{"main": {{"url": "postgres://x"}}}}}}"#
    )
}

/// A registry file of its own under the target directory.
struct Copy(PathBuf);

impl Copy {
    fn new(name: &str, text: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("registry-tier-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("registry.json"), text).unwrap();
        Self(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("registry.json")
    }

    fn cache(&self) -> Arc<RegistryCache> {
        RegistryCache::open(
            self.file(),
            CacheConfig::default().with_watch(WatchMode::Off),
        )
        .unwrap()
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "never saw: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn redis(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn stats(t: &RegistryTier) -> TierStats {
    t.stats()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tiers_share_entries_and_invalidations() {
    let Some(server) =
        RedisServer::start(Path::new(env!("CARGO_TARGET_TMPDIR")), Persistence::None)
    else {
        return;
    };
    let (file_a, file_b) = (
        Copy::new("share-a", &registry("v1")),
        Copy::new("share-b", &registry("v1")),
    );
    let a = RegistryTier::connect(file_a.cache(), TierConfig::new(server.url(), "share"))
        .await
        .unwrap();
    let b = RegistryTier::connect(file_b.cache(), TierConfig::new(server.url(), "share"))
        .await
        .unwrap();

    // A parses from its file and offers the entry; B takes it from Redis.
    assert_eq!(a.get("a").await.unwrap().description, "v1");
    assert_eq!((stats(&a).local_lookups, stats(&a).fills), (1, 1));
    assert_eq!(b.get("a").await.unwrap().description, "v1");
    assert_eq!(stats(&b).shared_hits, 1);
    b.get("a").await.unwrap();
    b.get("b").await.unwrap();
    let near = stats(&b).near_hits;
    assert_eq!(near, 1);

    // A sees its file change and publishes; B drops "a" only and gets the
    // new entry from Redis, although its own copy of the file is older.
    std::fs::write(file_a.file(), registry("v2")).unwrap();
    a.local().reload_now().unwrap();
    wait_for("B applies A's invalidation", || {
        stats(&b).applied_version >= 1
    })
    .await;
    assert_eq!(b.get("a").await.unwrap().description, "v2");
    b.get("b").await.unwrap();
    assert_eq!(stats(&b).near_hits, near + 1, "b was not invalidated");
    assert_eq!(stats(&a).published, 1);

    // A late message (an old version) changes nothing.
    let mut conn = redis(&server).await;
    let _: i64 = redis::cmd("PUBLISH")
        .arg("mechops:registry:share:events")
        .arg(r#"{"v": 1, "ids": ["b"], "full": false, "origin": 0}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    wait_for("the late message seen", || stats(&b).late_messages >= 1).await;
    b.get("b").await.unwrap();
    assert_eq!(
        stats(&b).near_hits,
        near + 2,
        "b is still served from the near cache"
    );

    // A slow process: another publisher has taken version 2 but not yet
    // written; an entry read from B's (old) file is not offered.
    let _: i64 = redis::cmd("INCR")
        .arg("mechops:registry:share:version")
        .query_async(&mut conn)
        .await
        .unwrap();
    let fills = stats(&b).fills;
    assert_eq!(b.get("c").await.unwrap().id, "c");
    assert_eq!(stats(&b).fills, fills, "the offer was refused");
    let exists: bool = redis::cmd("HEXISTS")
        .arg("mechops:registry:share:entries")
        .arg("c")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!exists);

    // A removed script is unknown everywhere once published.
    std::fs::write(
        file_a.file(),
        registry("v2").replace(
            r#"{"id": "b", "kind": "command", "description": "b", "command": ["true"]},"#,
            "",
        ),
    )
    .unwrap();
    a.local().reload_now().unwrap();
    wait_for("B applies the removal", || stats(&b).applied_version >= 3).await;
    let e = b.get("b").await.unwrap_err();
    assert!(e.to_string().contains(r#"unknown script "b""#), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_flushes_the_near_cache() {
    let Some(mut server) =
        RedisServer::start(Path::new(env!("CARGO_TARGET_TMPDIR")), Persistence::None)
    else {
        return;
    };
    let (file_a, file_b) = (
        Copy::new("lost-a", &registry("v1")),
        Copy::new("lost-b", &registry("v1")),
    );
    let a = RegistryTier::connect(file_a.cache(), TierConfig::new(server.url(), "lost"))
        .await
        .unwrap();
    let b = RegistryTier::connect(file_b.cache(), TierConfig::new(server.url(), "lost"))
        .await
        .unwrap();
    b.get("a").await.unwrap();
    b.get("a").await.unwrap();
    assert_eq!(stats(&b).near_hits, 1);
    let flushes = stats(&b).flushes;

    tokio::task::block_in_place(|| server.restart());
    // The subscription drops (flush) and comes back (flush again).
    wait_for("B flushed twice", || stats(&b).flushes >= flushes + 2).await;
    b.get("a").await.unwrap();
    assert_eq!(
        stats(&b).near_hits,
        1,
        "not served from the flushed near cache"
    );

    // Invalidations flow again after the reconnection.
    std::fs::write(file_a.file(), registry("v2")).unwrap();
    a.local().reload_now().unwrap();
    // The publisher retries while its connection comes back.
    wait_for("A published after the restart", || stats(&a).published >= 1).await;
    wait_for("B sees the change", || stats(&b).invalidations >= 1).await;
    assert_eq!(b.get("a").await.unwrap().description, "v2");
}

#[tokio::test]
async fn a_dropped_tier_leaves_no_listener_on_the_local_cache() {
    let Some(server) =
        RedisServer::start(Path::new(env!("CARGO_TARGET_TMPDIR")), Persistence::None)
    else {
        return;
    };
    let file = Copy::new("dropped", &registry("v1"));
    let local = file.cache();
    let tier = RegistryTier::connect(Arc::clone(&local), TierConfig::new(server.url(), "dropped"))
        .await
        .unwrap();
    assert_eq!(local.reload_listeners(), 1);
    let weak = Arc::downgrade(&tier);
    drop(tier);
    // Its tasks hold it only for a moment at a time.
    wait_for("the tier is freed", || weak.strong_count() == 0).await;
    assert_eq!(local.reload_listeners(), 0);
    // The local cache goes on reloading without it.
    std::fs::write(file.file(), registry("v2")).unwrap();
    assert!(local.reload_now().unwrap().changed_file);
    assert_eq!(local.get("a").unwrap().description, "v2");
}

#[tokio::test]
async fn bad_configurations_are_refused() {
    let dir = Copy::new("config", &registry("v1"));
    let e = RegistryTier::connect(dir.cache(), TierConfig::new("http://x", "n"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("must start with redis://"), "{e}");
    let e = RegistryTier::connect(dir.cache(), TierConfig::new("redis://127.0.0.1:1", "a b"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid registry name"), "{e}");
}

/// The child's side of [`two_processes_see_each_others_changes`]: its own
/// copy of the file, its own tier; it reports on stdout.
async fn child_process(url: &str, file: &Path) {
    let local =
        RegistryCache::open(file, CacheConfig::default().with_watch(WatchMode::Off)).unwrap();
    let tier = RegistryTier::connect(local, TierConfig::new(url, "procs"))
        .await
        .unwrap();
    assert_eq!(tier.get("a").await.unwrap().description, "v1");
    println!("ready");
    // The parent publishes v2; the child's own file still says v1.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tier.get("a").await.unwrap().description != "v2" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the child never saw v2"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("saw v2");
    std::fs::write(file, registry("v3")).unwrap();
    tier.local().reload_now().unwrap();
    wait_for("the child published", || tier.stats().published >= 1).await;
    println!("published v3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_see_each_others_changes() {
    use std::io::BufRead as _;
    if let (Ok(url), Ok(file)) = (
        std::env::var("MECHOPS_TIER_CHILD_URL"),
        std::env::var("MECHOPS_TIER_CHILD_FILE"),
    ) {
        child_process(&url, Path::new(&file)).await;
        return;
    }
    let Some(server) =
        RedisServer::start(Path::new(env!("CARGO_TARGET_TMPDIR")), Persistence::None)
    else {
        return;
    };
    let (mine, theirs) = (
        Copy::new("procs-parent", &registry("v1")),
        Copy::new("procs-child", &registry("v1")),
    );
    let tier = RegistryTier::connect(mine.cache(), TierConfig::new(server.url(), "procs"))
        .await
        .unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "two_processes_see_each_others_changes",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MECHOPS_TIER_CHILD_URL", server.url())
        .env("MECHOPS_TIER_CHILD_FILE", theirs.file())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut expect = async |want: &str| {
        let got = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = rx.recv().await {
                // libtest may start the line with "test NAME ... ".
                if line.ends_with(want) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(got, Ok(true), "the child never said {want:?}");
    };
    expect("ready").await;
    std::fs::write(mine.file(), registry("v2")).unwrap();
    tier.local().reload_now().unwrap();
    expect("saw v2").await;
    expect("published v3").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tier.get("a").await.unwrap().description != "v3" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the parent never saw v3"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "the child failed: {status}");
}
