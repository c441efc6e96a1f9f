//! Inter-task affinity and task grouping (TAG: Fifty et al., "Efficiently Identifying Task
//! Groupings for Multi-Task Learning", NeurIPS 2021). The lookahead affinity of task i onto
//! task j is Z[i→j] = 1 − L_j(θ_s − η·g_i, θ_j) / L_j(θ_s, θ_j): how much one SGD step on
//! task i's loss alone lowers task j's loss on the same batch, averaged over the run. Its
//! first-order estimate Ẑ[i→j] = η·⟨g_i, g_j⟩ / L_j comes free from the Gram matrix. A
//! grouping of the tasks is scored by the total affinity each task receives from the others
//! in its group (the paper's network-selection objective, over partitions).

/// Running means of the lookahead affinity, its first-order estimate, and how often each pair
/// of task gradients conflicted (cosine < 0), over the probes of a run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Affinity {
    /// Tasks.
    pub t: usize,
    sum: Vec<f64>,
    count: Vec<u64>,
    est_sum: Vec<f64>,
    conflicts: Vec<u64>,
    pairs: Vec<u64>,
    /// Probes taken.
    pub probes: u64,
}

impl Affinity {
    /// No probe yet, for `t` tasks.
    pub fn new(t: usize) -> Affinity {
        let z = vec![0.0; t * t];
        let n = vec![0; t * t];
        Affinity { t, sum: z.clone(), count: n.clone(), est_sum: z, conflicts: n.clone(), pairs: n, probes: 0 }
    }

    /// One probe on one batch: each task's loss `before`, `after[i][j]` task j's loss after
    /// the step on task i's gradient, the Gram matrix `gram` (T×T) of the tasks' unweighted
    /// gradients of the shared parameters, and the lookahead's rate `lr`. A task whose loss is
    /// 0 in this batch (no labels in it) adds nothing to the entries it would divide.
    pub fn add(&mut self, before: &[f64], after: &[Vec<f64>], gram: &[f64], lr: f64) {
        let t = self.t;
        self.probes += 1;
        for i in 0..t {
            for j in 0..t {
                let k = i * t + j;
                if before[j] > 0.0 && after[i][j].is_finite() {
                    self.sum[k] += 1.0 - after[i][j] / before[j];
                    self.est_sum[k] += lr * gram[k] / before[j];
                    self.count[k] += 1;
                }
                let (ni, nj) = (gram[i * t + i], gram[j * t + j]);
                if i != j && ni > 0.0 && nj > 0.0 {
                    self.pairs[k] += 1;
                    if gram[k] < 0.0 {
                        self.conflicts[k] += 1;
                    }
                }
            }
        }
    }

    fn mean_of(&self, v: &[f64]) -> Vec<f64> {
        v.iter().zip(&self.count).map(|(s, &n)| if n > 0 { s / n as f64 } else { f64::NAN }).collect()
    }

    /// Z[i→j] at `[i·T + j]`, averaged over the probes (NaN where none measured it).
    pub fn mean(&self) -> Vec<f64> {
        self.mean_of(&self.sum)
    }

    /// The first-order estimate Ẑ[i→j], averaged the same way.
    pub fn estimate(&self) -> Vec<f64> {
        self.mean_of(&self.est_sum)
    }

    /// The share of probes in which task i's and task j's gradients conflicted (cosine < 0),
    /// at `[i·T + j]` (NaN on the diagonal and where no probe had both gradients).
    pub fn conflict_share(&self) -> Vec<f64> {
        self.conflicts
            .iter()
            .zip(&self.pairs)
            .map(|(&c, &n)| if n > 0 { c as f64 / n as f64 } else { f64::NAN })
            .collect()
    }

    /// Each task's mean affinity received from the others: mean over i ≠ j of Z[i→j].
    pub fn received(&self) -> Vec<f64> {
        let z = self.mean();
        let t = self.t;
        (0..t)
            .map(|j| {
                let v: Vec<f64> = (0..t).filter(|&i| i != j).map(|i| z[i * t + j]).filter(|x| x.is_finite()).collect();
                if v.is_empty() {
                    f64::NAN
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                }
            })
            .collect()
    }
}

/// Spearman's rank correlation of the off-diagonal entries of two T×T matrices (average ranks
/// for ties; pairs where either is NaN left out); NaN with fewer than two pairs or no spread.
pub fn rank_correlation(a: &[f64], b: &[f64], t: usize) -> f64 {
    let pairs: Vec<(f64, f64)> =
        (0..t * t).filter(|k| k / t != k % t && a[*k].is_finite() && b[*k].is_finite()).map(|k| (a[k], b[k])).collect();
    if pairs.len() < 2 {
        return f64::NAN;
    }
    let ranks = |v: Vec<f64>| -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&x, &y| v[x].total_cmp(&v[y]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            for &k in &idx[i..=j] {
                r[k] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        r
    };
    let ra = ranks(pairs.iter().map(|p| p.0).collect());
    let rb = ranks(pairs.iter().map(|p| p.1).collect());
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let (va, vb) = (ra.iter().map(|x| (x - ma).powi(2)).sum::<f64>(), rb.iter().map(|y| (y - mb).powi(2)).sum::<f64>());
    if va == 0.0 || vb == 0.0 {
        return f64::NAN;
    }
    cov / (va * vb).sqrt()
}

/// The score of a grouping: Σ over tasks j of the mean affinity onto j from the other tasks of
/// its group (0 for a task alone), with `z[i·T + j]` = Z[i→j]; NaN entries count as 0.
pub fn group_score(z: &[f64], t: usize, groups: &[Vec<usize>]) -> f64 {
    let at = |i: usize, j: usize| if z[i * t + j].is_finite() { z[i * t + j] } else { 0.0 };
    groups
        .iter()
        .map(|g| {
            if g.len() < 2 {
                return 0.0;
            }
            g.iter().map(|&j| g.iter().filter(|&&i| i != j).map(|&i| at(i, j)).sum::<f64>()).sum::<f64>()
                / (g.len() - 1) as f64
        })
        .sum()
}

/// Up to this many tasks, [`best_groups`] enumerates every partition (Bell(10) = 115,975).
pub const EXACT_TASKS: usize = 10;

/// The partition of the `t` tasks into exactly `k` non-empty groups with the highest
/// [`group_score`]: exact (every partition) for up to [`EXACT_TASKS`] tasks; above, a local
/// search from the best of several greedy starts: tasks move one at a time to the group that
/// raises the score most, until no move does (a local optimum, not always the global one).
/// Groups list tasks in increasing order, groups in order of their first task.
pub fn best_groups(z: &[f64], t: usize, k: usize) -> Vec<Vec<usize>> {
    let k = k.clamp(1, t.max(1));
    if t <= EXACT_TASKS {
        let mut best: Option<(f64, Vec<Vec<usize>>)> = None;
        let mut assign = vec![0usize; t];
        partitions(&mut assign, 0, 0, k, &mut |a| {
            let g = to_groups(a, k);
            let s = group_score(z, t, &g);
            if best.as_ref().is_none_or(|(b, _)| s > *b + 1e-12) {
                best = Some((s, g));
            }
        });
        return best.map(|b| b.1).unwrap_or_default();
    }
    local_search(z, t, k)
}

/// Every assignment of tasks `i..` to groups (restricted growth strings) using exactly `k`.
fn partitions(a: &mut [usize], i: usize, used: usize, k: usize, f: &mut dyn FnMut(&[usize])) {
    if i == a.len() {
        if used == k {
            f(a);
        }
        return;
    }
    // Not enough tasks left to open the groups still missing.
    if k - used.min(k) > a.len() - i {
        return;
    }
    for g in 0..(used + 1).min(k) {
        a[i] = g;
        partitions(a, i + 1, used.max(g + 1), k, f);
    }
}

fn to_groups(a: &[usize], k: usize) -> Vec<Vec<usize>> {
    let mut g = vec![Vec::new(); k];
    for (task, &grp) in a.iter().enumerate() {
        g[grp].push(task);
    }
    g.retain(|x| !x.is_empty());
    g.sort_by_key(|x| x[0]);
    g
}

fn local_search(z: &[f64], t: usize, k: usize) -> Vec<Vec<usize>> {
    let mut best: Option<(f64, Vec<usize>)> = None;
    for start in 0..t.min(8) {
        // Greedy start: seeds spread from `start`, every other task to its best group.
        let mut a: Vec<usize> = (0..t).map(|i| (i + t - start) % t % k).collect();
        loop {
            let current = group_score(z, t, &to_groups(&a, k));
            let mut improved = None;
            for task in 0..t {
                let from = a[task];
                if a.iter().filter(|&&g| g == from).count() == 1 {
                    continue; // a group may not be emptied
                }
                for to in (0..k).filter(|&g| g != from) {
                    a[task] = to;
                    let s = group_score(z, t, &to_groups(&a, k));
                    if s > current + 1e-12 && improved.is_none_or(|(b, _, _)| s > b) {
                        improved = Some((s, task, to));
                    }
                    a[task] = from;
                }
            }
            match improved {
                Some((_, task, to)) => a[task] = to,
                None => break,
            }
        }
        let s = group_score(z, t, &to_groups(&a, k));
        if best.as_ref().is_none_or(|(b, _)| s > *b) {
            best = Some((s, a));
        }
    }
    best.map(|(_, a)| to_groups(&a, k)).unwrap_or_default()
}
