//! The registry table of `mechops bench`: lookups of one script through
//! the registry cache, warm (a hit) and cold (in a generated 1 000-entry
//! registry file), beside the reference figures of the original registry
//! cache (0.01 ms warm, 5 to 10 ms cold) and the targets (100 ns, 2 ms).
//! Live medians of a few runs on a possibly busy machine, not criterion
//! medians (see `docs/BENCHMARKS.md`).

use core::hint::black_box;
use core::time::Duration;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use mechops_std::registry::{CacheConfig, Registry, RegistryCache, WatchMode};

const ENTRIES: usize = 1000;
/// Timed runs per row; the median is printed.
const RUNS: usize = 9;
/// Warm lookups per run.
const WARM_LOOKUPS: u32 = 100_000;
/// Cold lookups per run.
const COLD_LOOKUPS: u32 = 5;

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` command scripts shaped like the format's example.
fn registry_text(n: usize) -> String {
    let scripts: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id": "resize-{i}", "name": "Resize images {i}", "description": "Resizes the images of a folder",
  "tags": ["media"], "kind": "command",
  "command": ["python3", "scripts/resize.py", "--width", "{{width}}", "{{folder}}"],
  "env": {{"QUALITY": "high"}}, "workdir": ".", "timeout_ms": 60000,
  "arguments": {{"width": {{"type": "integer", "default": 800, "description": "target width"}},
                "folder": {{"type": "string", "required": true, "description": "folder to process"}}}}}}"#
            )
        })
        .collect();
    format!(
        "{{\"version\": 1, \"scripts\": [\n{}\n]}}\n",
        scripts.join(",\n")
    )
}

/// The median time per call of `f`, over [`RUNS`] runs of `per_run` calls.
fn per_call(per_run: u32, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t0 = Instant::now();
        for _ in 0..per_run {
            f()?;
        }
        times.push(t0.elapsed() / per_run);
    }
    times.sort_unstable();
    Ok(times[RUNS / 2])
}

/// Measures and prints the registry table.
pub(crate) fn table(out: &mut impl Write) -> anyhow::Result<()> {
    let dir =
        Scratch(std::env::temp_dir().join(format!("mechops-bench-reg-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let path = dir.0.join("registry.json");
    std::fs::write(&path, registry_text(ENTRIES))?;
    let cache = RegistryCache::open(&path, CacheConfig::default().with_watch(WatchMode::Off))?;
    let id = format!("resize-{}", ENTRIES / 2);
    cache.get(&id)?;

    let warm = per_call(WARM_LOOKUPS, || {
        black_box(cache.get(black_box(&id))?);
        Ok(())
    })?;
    let miss = per_call(WARM_LOOKUPS / 100, || {
        cache.invalidate(&id);
        black_box(cache.get(black_box(&id))?);
        Ok(())
    })?;
    let cold = per_call(COLD_LOOKUPS, || {
        black_box(Registry::load_script(&path, &id)?);
        Ok(())
    })?;

    writeln!(
        out,
        "registry, {ENTRIES}-entry file (live, median of {RUNS} runs; reference = published figures)"
    )?;
    writeln!(
        out,
        "{:<40} {:>12} {:>12} {:>12}",
        "lookup", "measured", "target", "reference"
    )?;
    let row = |out: &mut dyn Write, name: &str, d: Duration, target: &str, reference: &str| {
        let measured = if d < Duration::from_micros(10) {
            format!("{} ns", d.as_nanos())
        } else {
            format!("{:.3} ms", d.as_secs_f64() * 1e3)
        };
        writeln!(
            out,
            "{name:<40} {measured:>12} {target:>12} {reference:>12}"
        )
    };
    row(out, "warm: cache hit", warm, "100 ns", "0.01 ms")?;
    row(out, "cold: cache miss, parse one entry", miss, "-", "-")?;
    row(
        out,
        "cold: read, index file, parse one entry",
        cold,
        "2 ms",
        "5-10 ms",
    )?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_has_its_rows() {
        let mut out = Vec::new();
        super::table(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for row in [
            "warm: cache hit",
            "cold: cache miss",
            "cold: read, index file",
        ] {
            assert!(text.lines().any(|l| l.starts_with(row)), "{row} in\n{text}");
        }
        assert!(
            text.contains("0.01 ms") && text.contains("5-10 ms"),
            "{text}"
        );
    }
}
