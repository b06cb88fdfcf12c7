//! `mechops uuid`.

/// Arguments of `mechops uuid`.
#[derive(Debug, clap::Args)]
pub(crate) struct UuidArgs {}

/// Runs `mechops uuid`.
pub(crate) fn run(_args: UuidArgs) -> anyhow::Result<()> {
    Err(crate::output::input_error("mechops uuid: skeleton"))
}
