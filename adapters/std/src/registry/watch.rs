//! Watching the registry file: debounced change notifications on its
//! folder, or polling its metadata.
//!
//! The folder is watched, not the file: editors that save by writing a
//! new file and renaming it over the old one, or by deleting and
//! re-creating it, replace the inode a file watch would follow. Every
//! event naming the file leads to a reload, which compares the bytes and
//! reloads only when they changed.
//!
//! Events are hints (notify #181, #626; watchfiles #348): an event with
//! the rescan flag (the kernel queue overflowed) or a watcher error leads
//! to a full reload that drops every parsed entry, and the status says
//! notifications were lost. When notifications cannot start at all (the
//! inotify watch limit, notify #69), the error is reported in the status
//! and the file is polled instead.
//!
//! The threads hold only a weak reference to the cache: dropping the last
//! `Arc` stops them (the poller within one interval, the notification
//! worker when the debouncer it listens to is dropped).

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use super::cache::{CacheConfig, RegistryCache, WatchMode};

/// What a file's metadata says about its content: device, inode, size and
/// modification time (nanoseconds). `None` when it cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileStamp {
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }
}

/// A running watcher; [`Watcher::stop`] or dropping it ends its threads.
pub(crate) struct Watcher {
    stop: Arc<AtomicBool>,
    _debouncer: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
}

impl Watcher {
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts watching as `config.watch` says; returns the watcher and a
/// status line.
pub(crate) fn start(cache: &Arc<RegistryCache>, config: &CacheConfig) -> (Option<Watcher>, String) {
    match config.watch {
        WatchMode::Off => (None, "off".to_owned()),
        WatchMode::Poll(every) => match poll(cache, every) {
            Ok(w) => (Some(w), format!("poll every {} ms", every.as_millis())),
            Err(reason) => (None, format!("off ({reason})")),
        },
        WatchMode::Notify => match notify(cache, config.debounce) {
            Ok(w) => (Some(w), "notify".to_owned()),
            Err(reason) => match poll(cache, config.poll_interval) {
                Ok(w) => (
                    Some(w),
                    format!(
                        "poll every {} ms (notifications unavailable: {reason})",
                        config.poll_interval.as_millis()
                    ),
                ),
                Err(poll_reason) => (
                    None,
                    format!("off (notifications unavailable: {reason}; {poll_reason})"),
                ),
            },
        },
    }
}

/// Polls the file's metadata every `every`.
fn poll(cache: &Arc<RegistryCache>, every: Duration) -> Result<Watcher, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let weak = Arc::downgrade(cache);
    let flag = Arc::clone(&stop);
    let spawned = std::thread::Builder::new()
        .name("registry-poll".to_owned())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                let Some(cache) = weak.upgrade() else { return };
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                cache.reload_if_stamp_changed();
            }
        });
    spawned.map_err(|e| format!("cannot start the polling thread: {e}"))?;
    Ok(Watcher {
        stop,
        _debouncer: None,
    })
}

/// Watches the file's folder with debounced notifications.
fn notify(cache: &Arc<RegistryCache>, debounce: Duration) -> Result<Watcher, String> {
    let path = cache.path().to_path_buf();
    let folder = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = path.file_name().map(ToOwned::to_owned);
    let (tx, rx) = mpsc::channel::<DebounceEventResult>();
    let mut debouncer = new_debouncer(debounce, None, tx).map_err(|e| e.to_string())?;
    debouncer
        .watch(&folder, RecursiveMode::NonRecursive)
        .map_err(|e| format!("{e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let weak = Arc::downgrade(cache);
    std::thread::Builder::new()
        .name("registry-watch".to_owned())
        .spawn(move || {
            // Ends when the debouncer (and with it the sender) is dropped.
            for result in rx {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Some(cache) = weak.upgrade() else { return };
                on_events(&cache, result, name.as_deref());
            }
        })
        .map_err(|e| format!("cannot start the watch thread: {e}"))?;
    Ok(Watcher {
        stop,
        _debouncer: Some(debouncer),
    })
}

/// Acts on one batch of debounced events for the file named `name`.
fn on_events(cache: &RegistryCache, result: DebounceEventResult, name: Option<&OsStr>) {
    match result {
        Ok(events) => {
            let rescan = events.iter().any(|e| e.need_rescan());
            let ours = events
                .iter()
                .any(|e| e.paths.iter().any(|p| p.file_name() == name));
            if rescan {
                cache.set_watch_status(
                    "notify (events were lost; the file was reloaded in full)".to_owned(),
                );
                let _ = cache.reload_full();
            } else if ours {
                let _ = cache.reload_now();
            }
        }
        Err(errors) => {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            cache.set_watch_status(format!(
                "notify (watcher error: {}; the file was reloaded in full)",
                text.join("; ")
            ));
            let _ = cache.reload_full();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify_debouncer_full::DebouncedEvent;
    use notify_debouncer_full::notify::event::{EventKind, Flag};
    use notify_debouncer_full::notify::{Error, Event};

    fn setup(name: &str) -> (PathBuf, Arc<RegistryCache>) {
        let dir =
            std::env::temp_dir().join(format!("mechops-watch-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("registry.json");
        std::fs::write(
            &file,
            r#"{"version": 1, "scripts": [{"id": "a", "kind": "command", "command": ["true"]}]}"#,
        )
        .unwrap();
        let cache =
            RegistryCache::open(&file, CacheConfig::default().with_watch(WatchMode::Off)).unwrap();
        (dir, cache)
    }

    fn batch(event: Event) -> DebounceEventResult {
        Ok(vec![DebouncedEvent::new(event, std::time::Instant::now())])
    }

    #[test]
    fn a_rescan_flag_reloads_in_full_and_says_so() {
        let (dir, cache) = setup("rescan");
        cache.get("a").unwrap();
        assert_eq!(cache.cached_len(), 1);
        // An event for another file changes nothing.
        on_events(
            &cache,
            batch(Event::new(EventKind::Any).add_path(dir.join("other"))),
            Some(OsStr::new("registry.json")),
        );
        assert_eq!(cache.cached_len(), 1);
        // The kernel queue overflowed: every parsed entry goes.
        on_events(
            &cache,
            batch(Event::new(EventKind::Other).set_flag(Flag::Rescan)),
            Some(OsStr::new("registry.json")),
        );
        assert_eq!(cache.cached_len(), 0);
        assert!(
            cache.watch_status().contains("events were lost"),
            "{}",
            cache.watch_status()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn watcher_errors_are_reported_and_reload_in_full() {
        let (dir, cache) = setup("error");
        cache.get("a").unwrap();
        on_events(
            &cache,
            Err(vec![Error::generic("inotify watch limit reached")]),
            Some(OsStr::new("registry.json")),
        );
        assert_eq!(cache.cached_len(), 0);
        assert!(
            cache.watch_status().contains("inotify watch limit reached"),
            "{}",
            cache.watch_status()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
