//! The collectives over MPI (rsmpi over the system's Open MPI or MPICH): one process per
//! rank, started by `mpirun`. Sums go to rank 0, which adds the parts in rank order and
//! broadcasts the result, so every rank gets the same bits whatever the MPI library's own
//! reduction order would be.

use mpi::collective::{CommunicatorCollectives, Root};
use mpi::topology::{Communicator, SimpleCommunicator};

use super::{rank_order_sum, Collective};
use crate::error::{Error, Result};

/// MPI's world: initialise it once per process with [`MpiWorld::init`] and keep it alive for
/// the run (dropping it finalises MPI).
pub struct MpiWorld {
    universe: mpi::environment::Universe,
}

/// This process's rank in [`MpiWorld`]: what the trainer's collectives go through.
pub struct MpiRank {
    rank: usize,
    size: usize,
    scratch: Vec<f32>,
}

impl MpiWorld {
    /// Initialises MPI (an error when it already was or cannot be).
    pub fn init() -> Result<MpiWorld> {
        let universe = mpi::initialize().ok_or_else(|| Error::Distributed {
            rank: 0,
            message: "MPI could not be initialised (already initialised?)".into(),
        })?;
        Ok(MpiWorld { universe })
    }

    /// This process's handle for the trainer.
    pub fn rank(&self) -> MpiRank {
        let w = self.universe.world();
        MpiRank { rank: w.rank() as usize, size: w.size() as usize, scratch: Vec::new() }
    }

    /// This process's rank among those on its machine (Open MPI's
    /// `OMPI_COMM_WORLD_LOCAL_RANK`, MPICH's `MPI_LOCALRANKID`; else its world rank): which of
    /// the machine's adapters it opens.
    pub fn local_rank(&self) -> usize {
        ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"]
            .iter()
            .find_map(|k| std::env::var(k).ok()?.parse().ok())
            .unwrap_or_else(|| self.universe.world().rank() as usize)
    }

    /// Ends every rank's process at once with `code` (MPI_Abort): what a rank that failed
    /// calls, after saying why, so the others do not wait for it for ever.
    pub fn abort(&self, code: i32) -> ! {
        self.universe.world().abort(code)
    }
}

fn world() -> SimpleCommunicator {
    SimpleCommunicator::world()
}

impl Collective for MpiRank {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum(&mut self, buf: &mut [f32]) -> Result<()> {
        let w = world();
        let root = w.process_at_rank(0);
        if self.rank == 0 {
            self.scratch.resize(buf.len() * self.size, 0.0);
            root.gather_into_root(&buf[..], &mut self.scratch[..]);
            let parts: Vec<&[f32]> = self.scratch.chunks(buf.len().max(1)).collect();
            rank_order_sum(&parts, buf);
        } else {
            root.gather_into(&buf[..]);
        }
        root.broadcast_into(buf);
        Ok(())
    }

    fn gather(&mut self, value: u64) -> Result<Vec<u64>> {
        let mut all = vec![0u64; self.size];
        world().all_gather_into(&value, &mut all[..]);
        Ok(all)
    }
}
