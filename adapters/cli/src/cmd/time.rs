//! `mechops time`.

/// Arguments of `mechops time`.
#[derive(Debug, clap::Args)]
pub(crate) struct TimeArgs {}

/// Runs `mechops time`.
pub(crate) fn run(_args: TimeArgs) -> anyhow::Result<()> {
    Err(crate::output::input_error("mechops time: skeleton"))
}
