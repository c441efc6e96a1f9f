//! Data: CSV tables, datasets with per-task labels and masks, splits and standardisation,
//! and the built-in datasets.

pub mod batch;
pub mod builtin;
pub mod dataset;
pub mod encoding;
pub mod recsys;
pub mod scaling;
pub mod split;
pub mod table;

pub use dataset::{CatColumn, Columns, Dataset};
pub use encoding::{default_embedding_dim, Encoding, Vocabulary};
pub use scaling::{Scaling, Split, Splits};
pub use split::{split_rows, Standardizer};
pub use table::Table;
