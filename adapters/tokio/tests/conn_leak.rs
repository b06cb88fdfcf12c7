//! A checkout held past the leak threshold is reported through `tracing`
//! with the location of the `acquire` call (kept by `#[track_caller]`).

use core::time::Duration;
use std::io::Write;
use std::sync::{Arc, Mutex};

use mechops_tokio::conn::noop::NoopManager;
use mechops_tokio::conn::{ConnectionPool, ConnectionPoolConfig};

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn leak_report_names_the_acquire_call() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let mut config = ConnectionPoolConfig::sized(0, 1);
    config.pool.leak_threshold = Some(Duration::from_secs(1));
    let pool = ConnectionPool::new("leaky", NoopManager::new(), vec!["a"], config).unwrap();
    let line = line!() + 1;
    let held = pool.acquire().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let location = format!("{}:{line}", file!());
    assert!(text.contains("leak threshold"), "{text}");
    assert!(text.contains(&location), "expected {location} in {text}");
    assert!(text.contains("pool=leaky"), "{text}");
    assert_eq!(text.matches("leak threshold").count(), 1, "{text}");
    // Reported, not reclaimed: the holder still has it.
    assert_eq!(pool.metrics().in_use, 1);
    drop(held);
}
