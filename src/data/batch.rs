//! Batch assembly: rows of a dataset gathered into the inputs of one step.

use super::Dataset;
use crate::error::{elements, host_vec, Error, Result};

/// Rows of `d` gathered into one batch of `batch` rows; rows past the data are padding with
/// every label masked out. Returns the model's inputs in its graph's order: x (the numeric
/// features, when there are any); for each categorical column its ids, then their inverse
/// index (offsets and order, [`crate::cpu::embed_inverse`]; padding rows look up row 0 and
/// are left out of it); then per task labels and mask. More rows than `batch`, or a batch
/// too large to allocate, is an error.
pub fn gather(d: &Dataset, rows: &[usize], batch: usize) -> Result<Vec<Vec<f32>>> {
    let w = d.width();
    if rows.len() > batch {
        return Err(Error::shape("gather", format!("{} rows for a batch of {batch}", rows.len())));
    }
    let mut out = Vec::new();
    if w > 0 {
        let n = elements(&[batch, w], || format!("a batch of {batch} rows of {w} features"))?;
        let mut x = host_vec(n, 0.0, "a batch")?;
        for (k, &r) in rows.iter().enumerate() {
            x[k * w..(k + 1) * w].copy_from_slice(&d.features[r * w..(r + 1) * w]);
        }
        out.push(x);
    }
    for col in &d.categorical {
        let ids: Vec<u32> = rows.iter().map(|&r| col.ids[r]).collect();
        let (offsets, mut order) = crate::cpu::embed_inverse(&ids, col.table_rows());
        order.resize(batch, 0.0);
        let mut idf: Vec<f32> = ids.iter().map(|&i| i as f32).collect();
        idf.resize(batch, 0.0);
        out.extend([idf, offsets, order]);
    }
    for t in 0..d.labels.len() {
        let mut l = vec![0.0; batch];
        let mut m = vec![0.0; batch];
        for (k, &r) in rows.iter().enumerate() {
            l[k] = d.labels[t][r];
            m[k] = d.masks[t][r];
        }
        out.push(l);
        out.push(m);
    }
    Ok(out)
}
