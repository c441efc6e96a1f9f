//! Fuzz target: the CSV reader and the dataset builder must return errors, never panic.
#![no_main]

use hydra::data::{Dataset, Table};
use hydra::mtl::TaskDef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Table::parse("fuzz.csv", data) {
        let tasks = [TaskDef::regression("y", "y"), TaskDef::multiclass("c", "c", 4)];
        let _ = Dataset::from_table(&t, None, &[], &tasks, None);
    }
});
