//! `mechops pack`, `unpack`, `inspect` and `keygen`.

/// Arguments of `mechops pack`.
#[derive(Debug, clap::Args)]
pub(crate) struct PackArgs {}
/// Arguments of `mechops unpack`.
#[derive(Debug, clap::Args)]
pub(crate) struct UnpackArgs {}
/// Arguments of `mechops inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {}
/// Arguments of `mechops keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {}

/// Runs `mechops pack`.
pub(crate) fn pack(_args: PackArgs) -> anyhow::Result<()> {
    Err(crate::output::input_error("pack: skeleton"))
}
/// Runs `mechops unpack`.
pub(crate) fn unpack(_args: UnpackArgs) -> anyhow::Result<()> {
    Err(crate::output::input_error("unpack: skeleton"))
}
/// Runs `mechops inspect`.
pub(crate) fn inspect(_args: InspectArgs) -> anyhow::Result<()> {
    Err(crate::output::input_error("inspect: skeleton"))
}
/// Runs `mechops keygen`.
pub(crate) fn keygen(_args: KeygenArgs) -> anyhow::Result<()> {
    Err(crate::output::input_error("keygen: skeleton"))
}
