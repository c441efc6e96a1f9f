//! The built-in datasets, compiled into the binary so `hydra train` needs no file: energy,
//! parkinsons, digits, multidigits (two digits side by side, paired within each split), and
//! the MMoE synthetic two-task generator with a correlation p (Ma et al., KDD 2018), and a
//! generated recommender log ([`super::recsys`]).

use super::split::{shuffle, split_rows};
use super::table::Table;
use crate::error::{Error, Result};
use crate::rng::Rng;

const ENERGY: &[u8] = include_bytes!("../../data/energy_efficiency.csv");
const PARKINSONS: &[u8] = include_bytes!("../../data/parkinsons_updrs.csv");
const DIGITS: &[u8] = include_bytes!("../../data/digits.csv");

/// Names accepted by `[data] dataset = …`.
pub const NAMES: &[&str] = &["energy", "parkinsons", "digits", "multidigits", "mmoe", "recsys"];

/// A built-in dataset: one table to split, or tables already split (train, val, test).
pub enum Source {
    /// Split by the config's fractions.
    One(Table),
    /// Already split.
    Three(Box<[Table; 3]>),
}

/// Loads a built-in dataset. `split` and `seed` are used by multidigits, `correlation` and
/// `rows` by mmoe.
pub fn load(name: &str, split: [f64; 3], seed: u64, correlation: f64, rows: Option<usize>) -> Result<Source> {
    Ok(match name {
        "energy" => Source::One(Table::parse("<built-in energy_efficiency.csv>", ENERGY)?),
        "parkinsons" => Source::One(Table::parse("<built-in parkinsons_updrs.csv>", PARKINSONS)?),
        "digits" => Source::One(Table::parse("<built-in digits.csv>", DIGITS)?),
        "multidigits" => Source::Three(Box::new(multidigits(split, seed, rows.unwrap_or(1))?)),
        "mmoe" => Source::One(mmoe(100, rows.unwrap_or(4000), correlation, seed)?),
        "recsys" => Source::One(super::recsys::recsys(rows.unwrap_or(20000), seed)?),
        other => {
            return Err(Error::invalid("data.dataset", format!("{other:?} (built-in datasets: {})", NAMES.join(", "))))
        }
    })
}

fn table(file: &str, header: Vec<String>, rows: Vec<Vec<String>>) -> Result<Table> {
    Table::from_rows(file, header, rows)
}

/// MultiDigits: the digit images are split first; within each split image i is paired with
/// image perm`[i]` (`pairs_per_image` seeded permutations), the input is the 8×16 image (left
/// row r, then right row r), and the tasks are `left` and `right` (10 classes each).
pub fn multidigits(split: [f64; 3], seed: u64, pairs_per_image: usize) -> Result<[Table; 3]> {
    let digits = Table::parse("<built-in digits.csv>", DIGITS)?;
    let label = digits.column("label", "multidigits")?;
    let parts = split_rows(digits.len(), split, seed, None)?;
    let mut header: Vec<String> = (0..128).map(|i| format!("p{i}")).collect();
    header.push("left".into());
    header.push("right".into());
    let mut rng = Rng::new(seed ^ 0xD161);
    let mut out = Vec::new();
    for (s, idx) in parts.iter().enumerate() {
        let mut rows = Vec::new();
        for _ in 0..pairs_per_image.max(1) {
            let mut perm = idx.clone();
            shuffle(&mut perm, &mut rng);
            for (k, &a) in idx.iter().enumerate() {
                let b = perm[k];
                let mut row = Vec::with_capacity(130);
                for r in 0..8 {
                    row.extend((r * 8..r * 8 + 8).map(|c| digits.cell(a, c).to_string()));
                    row.extend((r * 8..r * 8 + 8).map(|c| digits.cell(b, c).to_string()));
                }
                row.push(digits.cell(a, label).to_string());
                row.push(digits.cell(b, label).to_string());
                rows.push(row);
            }
        }
        out.push(table(&format!("<built-in multidigits {}>", ["train", "val", "test"][s]), header.clone(), rows)?);
    }
    let [a, b, c]: [Table; 3] = out.try_into().map_err(|_| Error::invalid("multidigits", "three splits"))?;
    Ok([a, b, c])
}

/// The MMoE synthetic tasks: u₁ ⟂ u₂ unit vectors in R^d, w₁ = u₁, w₂ = p·u₁ + √(1−p²)·u₂,
/// x ~ N(0, I), y_i = w_iᵀx + Σ_{k=1..10} sin(k·w_iᵀx + (k−1)²) + N(0, 0.01²)
/// (α_k = k, β_k = (k−1)², c = 1 as in Google Research's generator). Columns x0…, y1, y2.
pub fn mmoe(d: usize, n: usize, p: f64, seed: u64) -> Result<Table> {
    let mut rng = Rng::new(seed ^ 0x3307);
    let mut u1: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
    let n1 = u1.iter().map(|v| v * v).sum::<f64>().sqrt();
    u1.iter_mut().for_each(|v| *v /= n1);
    let mut u2: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
    let proj: f64 = u1.iter().zip(&u2).map(|(a, b)| a * b).sum();
    u2.iter_mut().zip(&u1).for_each(|(b, a)| *b -= proj * a);
    let n2 = u2.iter().map(|v| v * v).sum::<f64>().sqrt();
    u2.iter_mut().for_each(|v| *v /= n2);
    let q = (1.0 - p * p).max(0.0).sqrt();
    let w1 = u1.clone();
    let w2: Vec<f64> = u1.iter().zip(&u2).map(|(a, b)| p * a + q * b).collect();
    let mut header: Vec<String> = (0..d).map(|i| format!("x{i}")).collect();
    header.push("y1".into());
    header.push("y2".into());
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let x: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        let mut row: Vec<String> = x.iter().map(|v| format!("{v:.6}")).collect();
        for w in [&w1, &w2] {
            let s: f64 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
            let y = s
                + (1..=10).map(|k| (k as f64 * s + ((k - 1) * (k - 1)) as f64).sin()).sum::<f64>()
                + 0.01 * rng.normal();
            row.push(format!("{y:.6}"));
        }
        rows.push(row);
    }
    table(&format!("<built-in mmoe p={p}>"), header, rows)
}
