//! Data-parallel training: the collectives a training step needs across ranks, behind one
//! trait so the trainer does not care what carries them. [`LocalGroup`] runs ranks as threads
//! of one process (what the test suite uses); with the `mpi` feature, `mpi::MpiWorld` runs
//! them as MPI processes (`mpirun -np N hydra train --distributed`).
//!
//! Every reduction is a sum taken in rank order, so every rank gets the same bits and the
//! parameters stay identical on all ranks without being sent.

use std::sync::{Arc, Condvar, Mutex};

use crate::error::{Error, Result};

#[cfg(feature = "mpi")]
pub mod mpi;

/// The collectives of data-parallel training.
pub trait Collective: Send {
    /// This rank, from 0.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Replaces `buf` by the element-wise sum of every rank's `buf`, taken in rank order
    /// (the same bits on every rank). Every rank passes the same length.
    fn sum(&mut self, buf: &mut [f32]) -> Result<()>;
    /// Every rank's `value`, in rank order.
    fn gather(&mut self, value: u64) -> Result<Vec<u64>>;
}

/// The rows of a global batch this rank takes: a contiguous slice, the first `len % size`
/// ranks one row more.
pub fn share(len: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let (base, extra) = (len / size, len % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// The rows each rank's graph is compiled for: its largest share of a global batch.
pub fn local_batch(batch: usize, size: usize) -> usize {
    batch.div_ceil(size.max(1))
}

/// `values` summed in rank order: what [`Collective::sum`] returns on every rank.
pub fn rank_order_sum(parts: &[&[f32]], out: &mut [f32]) {
    out.iter_mut().for_each(|v| *v = 0.0);
    for p in parts {
        for (o, v) in out.iter_mut().zip(p.iter()) {
            *o += v;
        }
    }
}

/// Ranks as threads of one process, meeting at a barrier for each collective; a rank that
/// fails ([`LocalRank::fail`], or dropped mid-run) ends the others' waits with an error naming
/// it, as `mpirun` ends a job when one process dies.
pub struct LocalGroup;

struct Shared {
    size: usize,
    state: Mutex<Round>,
    turn: Condvar,
}

#[derive(Default)]
struct Round {
    /// Contributions of the current round, by rank.
    floats: Vec<Option<Vec<f32>>>,
    words: Vec<Option<u64>>,
    arrived: usize,
    /// Ranks that have read the current round's result.
    left: usize,
    generation: u64,
    failed: Option<(usize, String)>,
}

/// One rank of a [`LocalGroup`]: move it into the rank's thread.
pub struct LocalRank {
    rank: usize,
    shared: Arc<Shared>,
    done: bool,
}

impl LocalGroup {
    /// `size` ranks, one handle each, in rank order.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(size: usize) -> Vec<LocalRank> {
        let round = Round { floats: vec![None; size], words: vec![None; size], ..Round::default() };
        let shared = Arc::new(Shared { size, state: Mutex::new(round), turn: Condvar::new() });
        (0..size).map(|rank| LocalRank { rank, shared: shared.clone(), done: false }).collect()
    }
}

impl LocalRank {
    /// Marks this rank failed with `why`: every other rank's next collective fails naming it.
    pub fn fail(&mut self, why: &str) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.failed.get_or_insert((self.rank, why.to_string()));
        }
        self.shared.turn.notify_all();
    }

    /// Marks this rank finished normally (a dropped handle that did not is a failure).
    pub fn finish(mut self) {
        self.done = true;
    }

    fn failed_error(failed: &(usize, String)) -> Error {
        Error::Distributed { rank: failed.0, message: failed.1.clone() }
    }

    /// One round: deposit, wait for every rank, read the round with `read`, wait until every
    /// rank has read before the next round may start.
    fn round<T>(&mut self, deposit: impl FnOnce(&mut Round), read: impl FnOnce(&Round) -> T) -> Result<T> {
        let sh = self.shared.clone();
        let lock_err = || Error::Distributed { rank: self.rank, message: "the group's lock is poisoned".into() };
        let mut st = sh.state.lock().map_err(|_| lock_err())?;
        // Wait until the previous round has been read by everyone.
        while st.left != 0 && st.failed.is_none() {
            st = sh.turn.wait(st).map_err(|_| lock_err())?;
        }
        if let Some(f) = &st.failed {
            return Err(Self::failed_error(f));
        }
        deposit(&mut st);
        st.arrived += 1;
        let generation = st.generation;
        if st.arrived == sh.size {
            st.arrived = 0;
            st.left = sh.size;
            st.generation += 1;
            sh.turn.notify_all();
        } else {
            while st.generation == generation && st.failed.is_none() {
                st = sh.turn.wait(st).map_err(|_| lock_err())?;
            }
            if st.generation == generation {
                if let Some(f) = &st.failed {
                    return Err(Self::failed_error(f));
                }
            }
        }
        let out = read(&st);
        st.left -= 1;
        if st.left == 0 {
            st.floats.iter_mut().for_each(|f| *f = None);
            st.words.iter_mut().for_each(|w| *w = None);
            sh.turn.notify_all();
        }
        Ok(out)
    }
}

impl Drop for LocalRank {
    fn drop(&mut self) {
        if !self.done {
            self.fail("the rank ended before the run did");
        }
    }
}

impl Collective for LocalRank {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn sum(&mut self, buf: &mut [f32]) -> Result<()> {
        let rank = self.rank;
        let mine = buf.to_vec();
        let n = buf.len();
        let summed = self.round(
            |st| st.floats[rank] = Some(mine),
            |st| {
                let parts: Vec<&[f32]> = st.floats.iter().map(|f| f.as_deref().unwrap_or(&[])).collect();
                if parts.iter().any(|p| p.len() != n) {
                    return None;
                }
                let mut out = vec![0.0; n];
                rank_order_sum(&parts, &mut out);
                Some(out)
            },
        )?;
        let summed = summed
            .ok_or_else(|| Error::Distributed { rank, message: "ranks summed buffers of different lengths".into() })?;
        buf.copy_from_slice(&summed);
        Ok(())
    }

    fn gather(&mut self, value: u64) -> Result<Vec<u64>> {
        let rank = self.rank;
        self.round(|st| st.words[rank] = Some(value), |st| st.words.iter().map(|w| w.unwrap_or(0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_batch_contiguously() {
        for len in [1, 3, 17, 64, 65] {
            for size in 1..5 {
                let mut next = 0;
                for r in 0..size {
                    let s = share(len, r, size);
                    assert_eq!(s.start, next);
                    assert!(s.len() <= local_batch(len, size));
                    next = s.end;
                }
                assert_eq!(next, len);
            }
        }
    }

    #[test]
    fn local_group_sums_in_rank_order_and_names_a_failed_rank() {
        let ranks = LocalGroup::new(3);
        let handles: Vec<_> = ranks
            .into_iter()
            .map(|mut r| {
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    for round in 0..20 {
                        let mut v = vec![r.rank() as f32 + round as f32, 1e8, 1.0];
                        r.sum(&mut v).expect("sum");
                        out.push(v);
                        assert_eq!(r.gather(r.rank() as u64 * 10).expect("gather"), vec![0, 10, 20]);
                    }
                    r.finish();
                    out
                })
            })
            .collect();
        let results: Vec<Vec<Vec<f32>>> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
        for (round, v) in results[0].iter().enumerate() {
            let mut want = vec![0.0; 3];
            let parts: Vec<Vec<f32>> = (0..3).map(|r| vec![r as f32 + round as f32, 1e8, 1.0]).collect();
            let refs: Vec<&[f32]> = parts.iter().map(Vec::as_slice).collect();
            rank_order_sum(&refs, &mut want);
            assert_eq!(v, &want);
            // The same bits on every rank.
            assert_eq!(&results[1][round], v);
            assert_eq!(&results[2][round], v);
        }

        let mut ranks = LocalGroup::new(2);
        let mut r1 = ranks.pop().expect("rank 1");
        let mut r0 = ranks.pop().expect("rank 0");
        let t = std::thread::spawn(move || {
            let mut v = vec![1.0];
            r0.sum(&mut v)
        });
        r1.fail("its loss diverged");
        let e = t.join().expect("thread").expect_err("rank 1 failed");
        assert!(e.to_string().contains("rank 1") && e.to_string().contains("diverged"), "{e}");
    }
}
