//! The matmul form the context holds for its adapter (chosen by default or by `hydra bench
//! --tune`): stored with the device, built by [`crate::kernels`].

use super::DeviceKind;
use crate::error::{Error, Result};

/// Which form of the matmul kernel runs. Both give the same results (up to rounding order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulVariant {
    /// Barrier-free register blocking (entry `matmul`): 8×8 outputs per invocation, workgroups
    /// of `wg_x × wg_y` invocations. Fast on llvmpipe, whose barriers are costly.
    Registers {
        /// Invocations along N.
        wg_x: u32,
        /// Invocations along M.
        wg_y: u32,
    },
    /// Workgroup-memory tiles (entry `matmul_tiled`) of (4·wg_y)×16 and 16×(4·wg_x); each
    /// invocation keeps 4×4 outputs in registers. What real GPUs want. `wg_x, wg_y ≤ 16`.
    Tiled {
        /// Invocations along N.
        wg_x: u32,
        /// Invocations along M.
        wg_y: u32,
    },
}

impl MatmulVariant {
    /// The default for an adapter: register blocking on CPU adapters, tiles elsewhere.
    pub fn default_for(kind: DeviceKind) -> Self {
        match kind {
            DeviceKind::Cpu => MatmulVariant::Registers { wg_x: 8, wg_y: 8 },
            _ => MatmulVariant::Tiled { wg_x: 16, wg_y: 16 },
        }
    }

    pub(crate) fn check(self) -> Result<()> {
        let (x, y, tiled) = match self {
            MatmulVariant::Registers { wg_x, wg_y } => (wg_x, wg_y, false),
            MatmulVariant::Tiled { wg_x, wg_y } => (wg_x, wg_y, true),
        };
        if x == 0 || y == 0 || x * y > 1024 || (tiled && (x > 16 || y > 16)) {
            return Err(Error::invalid("matmul variant", format!("{self:?}: workgroup size out of range")));
        }
        Ok(())
    }
}
