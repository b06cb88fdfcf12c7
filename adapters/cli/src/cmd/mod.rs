//! One module per subcommand.

pub(crate) mod bench;
pub(crate) mod codec;
pub(crate) mod jobs;
pub(crate) mod pool;
pub(crate) mod registry;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod time;
pub(crate) mod uuid;
pub(crate) mod workspace;
