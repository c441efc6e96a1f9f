//! The `hydra` command's subcommands, one file each; the binary parses its arguments and
//! calls these.

mod affinity;
mod bench;
mod compare;
pub mod distributed;
mod eval;
mod info;
mod train;

use std::path::{Path, PathBuf};

pub use affinity::{affinity, AffinityArgs};
pub use bench::run_bench;
pub use compare::compare;
pub use eval::{eval, predict};
pub use info::info;
pub use train::{train, TrainOutputs};

use crate::config::Config;
use crate::error::Result;

/// The config `hydra train` and `hydra compare` use without `--config`.
pub const DEFAULT_CONFIG: &str = include_str!("../../examples/energy.toml");

/// The config at `path`, or the built-in energy example.
pub fn load_or_default(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Config::load(p),
        None => Config::parse("<built-in examples/energy.toml>", DEFAULT_CONFIG, PathBuf::from(".")),
    }
}
