//! `hydra train --distributed`: the MPI side of the command. Every rank opens its own adapter
//! (its local rank picks among the machine's best ones), trains its share of every batch, and
//! rank 0 alone prints, logs and writes files. A rank that fails says so with its rank and
//! ends every rank's process (MPI_Abort), so no rank waits for ever on one that is gone.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::Context;

/// This process's place in the run: its rank, the ranks, and what the trainer talks through.
pub struct Place {
    /// Its rank.
    pub rank: usize,
    /// The ranks.
    pub size: usize,
    /// Its rank among the processes on its machine (which adapter it opens).
    pub local_rank: usize,
    #[cfg(feature = "mpi")]
    world: crate::dist::mpi::MpiWorld,
}

/// Joins the MPI run this process was started in (by `mpirun`).
#[cfg(feature = "mpi")]
pub fn join() -> Result<Place> {
    let world = crate::dist::mpi::MpiWorld::init()?;
    let r = world.rank();
    let (rank, size) = (crate::dist::Collective::rank(&r), crate::dist::Collective::size(&r));
    Ok(Place { rank, size, local_rank: world.local_rank(), world })
}

/// Joins the MPI run: this build has no MPI, which the error says how to add.
#[cfg(not(feature = "mpi"))]
pub fn join() -> Result<Place> {
    Err(Error::invalid(
        "--distributed",
        "this hydra was built without MPI: build it with `cargo build --release --features mpi` (Debian: \
         apt-get install openmpi-bin libopenmpi-dev libclang-dev) and start it with `mpirun -np N`",
    ))
}

impl Place {
    /// The adapter this rank trains on.
    pub fn context(&self) -> Result<Arc<Context>> {
        let filter = std::env::var("HYDRA_ADAPTER").ok().filter(|s| !s.is_empty());
        Context::for_local_rank(filter.as_deref(), self.local_rank)
    }

    /// The collective the trainer sums through.
    pub fn collective(&self) -> Result<Box<dyn crate::dist::Collective>> {
        #[cfg(feature = "mpi")]
        {
            Ok(Box::new(self.world.rank()))
        }
        #[cfg(not(feature = "mpi"))]
        Err(Error::invalid("--distributed", "this hydra was built without MPI"))
    }

    /// Ends the run on every rank after this one failed with `e`, naming the rank.
    pub fn fail(&self, e: &Error) -> ! {
        eprintln!("hydra: rank {} of {}: {e}", self.rank, self.size);
        #[cfg(feature = "mpi")]
        self.world.abort(1);
        #[cfg(not(feature = "mpi"))]
        std::process::exit(1)
    }
}
