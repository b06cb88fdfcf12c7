//! `mechops bench`: live measurements printed beside the reference figures.
//!
//! Each table lives in its own module and prints itself.

mod conn;
mod jobs;
mod pools;
mod registry;
mod serial;
mod uuid;
mod workspace;

/// Arguments of `mechops bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {}

/// Runs every table in turn.
pub(crate) fn run(_args: BenchArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    uuid::table(&mut out)?;
    pools::table(&mut out)?;
    serial::table(&mut out)?;
    conn::table(&mut out)?;
    jobs::table(&mut out)?;
    workspace::table(&mut out)?;
    registry::table(&mut out)?;
    Ok(())
}
