//! The pools table of `mechops bench`.

use std::io::Write;

/// Measures and prints the pools table.
pub(crate) fn table(_out: &mut impl Write) -> anyhow::Result<()> {
    Ok(())
}
