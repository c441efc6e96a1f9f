//! The state a compiled graph keeps: parameters, gradients, optimizer state, the divergence
//! guard's verdict, and which parameters train.

use super::{Divergence, GpuGraph};
use crate::error::{Error, Result};

impl GpuGraph {
    /// Reads every parameter back, in [`crate::ir::Graph::params`] order (one readback).
    pub fn read_params(&self) -> Result<Vec<Vec<f32>>> {
        crate::gpu::wait::block("reading the graph back", self.read_params_async())
    }

    /// [`GpuGraph::read_params`] as a future: the form a browser page uses.
    pub async fn read_params_async(&self) -> Result<Vec<Vec<f32>>> {
        let s = &self.mem.store;
        Ok(s.split(&self.ctx.read_async(&s.params).await?))
    }

    /// Reads every parameter gradient back, in parameter order (one readback).
    pub fn read_grads(&self) -> Result<Vec<Vec<f32>>> {
        let s = &self.mem.store;
        Ok(s.split(&self.ctx.read(&s.grads)?))
    }

    /// Overwrites every parameter (in parameter order).
    pub fn write_params(&self, values: &[Vec<f32>]) -> Result<()> {
        let views = &self.mem.param_views;
        if values.len() != views.len() {
            return Err(Error::shape("write_params", format!("{} tensors for {}", values.len(), views.len())));
        }
        for (t, v) in views.iter().zip(values) {
            self.ctx.write(t, v)?;
        }
        Ok(())
    }

    /// The first divergence the guard saw, as (step, task index or T for a parameter, value).
    pub fn divergence(&self) -> Result<Option<Divergence>> {
        crate::gpu::wait::block("reading the graph back", self.divergence_async())
    }

    /// [`GpuGraph::divergence`] as a future: the form a browser page uses.
    pub async fn divergence_async(&self) -> Result<Option<Divergence>> {
        let Some(o) = &self.program.update else { return Ok(None) };
        Ok(guard_of(&self.ctx.read_async(&o.guard_state).await?))
    }

    /// Every parameter and the guard's verdict, in one readback.
    pub fn read_params_checked(&self) -> Result<(Vec<Vec<f32>>, Option<Divergence>)> {
        crate::gpu::wait::block("reading the graph back", self.read_params_checked_async())
    }

    /// [`GpuGraph::read_params_checked`] as a future: the form a browser page uses.
    pub async fn read_params_checked_async(&self) -> Result<(Vec<Vec<f32>>, Option<Divergence>)> {
        let s = &self.mem.store;
        match &self.program.update {
            None => Ok((self.read_params_async().await?, None)),
            Some(o) => {
                let mut v = self.ctx.read_many_async(&[&s.params, &o.guard_state]).await?;
                let guard = v.pop().unwrap_or_default();
                let flat = v.pop().unwrap_or_default();
                Ok((s.split(&flat), guard_of(&guard)))
            }
        }
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.program.update.as_ref().map_or(0, |o| o.step)
    }

    /// The optimizer's state tensors, each split per parameter (one readback each): SGD's
    /// momentum buffer, or Adam's exp_avg and exp_avg_sq. Empty without an optimizer.
    pub fn read_optim_state(&self) -> Result<Vec<Vec<Vec<f32>>>> {
        crate::gpu::wait::block("reading the graph back", self.read_optim_state_async())
    }

    /// [`GpuGraph::read_optim_state`] as a future: the form a browser page uses.
    pub async fn read_optim_state_async(&self) -> Result<Vec<Vec<Vec<f32>>>> {
        let Some(o) = &self.program.update else { return Ok(vec![]) };
        let n = o.opt.state_buffers();
        let mut out = Vec::with_capacity(n);
        for t in &o.state[..n] {
            out.push(self.mem.store.split(&self.ctx.read_async(t).await?));
        }
        Ok(out)
    }

    /// Restores optimizer state (as [`GpuGraph::read_optim_state`] returns it) and the step count.
    pub fn write_optim_state(&mut self, state: &[Vec<Vec<f32>>], steps: u64) -> Result<()> {
        let Some(o) = self.program.update.as_mut() else {
            return Err(Error::invalid("optimizer state", "the graph has no optimizer"));
        };
        if state.len() != o.opt.state_buffers() {
            return Err(Error::invalid(
                "optimizer state",
                format!("{} tensors per parameter, the optimizer keeps {}", state.len(), o.opt.state_buffers()),
            ));
        }
        for (buf, per_param) in o.state.iter().zip(state) {
            self.ctx.write(buf, &self.mem.store.pack(per_param, "optimizer state")?)?;
        }
        o.step = steps;
        Ok(())
    }

    /// Freezes parameters (by index, in parameter order): from now on they get no update
    /// and their optimizer state stays zero. The update becomes one dispatch per contiguous
    /// run of trainable parameters.
    pub fn freeze(&mut self, frozen: &[bool]) -> Result<()> {
        let s = &self.mem.store;
        if frozen.len() != s.shapes.len() {
            return Err(Error::shape("freeze", format!("{} flags for {} parameters", frozen.len(), s.shapes.len())));
        }
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        let mut open: Option<(usize, usize)> = None;
        // In buffer order, which is not quite parameter order (fused heads sit together).
        let mut by_place: Vec<usize> = (0..frozen.len()).collect();
        by_place.sort_by_key(|&i| s.offsets[i]);
        for i in by_place {
            let start = s.offsets[i];
            let end = start + s.len_of(i);
            if frozen[i] {
                ranges.extend(open.take());
            } else {
                open = Some(match open {
                    Some((st, _)) => (st, end),
                    None => (start, end),
                });
            }
        }
        ranges.extend(open);
        let ranges: Vec<(usize, usize)> = ranges.into_iter().map(|(st, e)| (st, e - st)).collect();
        let o = self.program.update.as_mut().ok_or_else(|| Error::invalid("freeze", "the graph has no optimizer"))?;
        o.set_ranges(&self.ctx, &s.params, &s.grads, &ranges)
    }
}

fn guard_of(s: &[f32]) -> Option<Divergence> {
    (s[1] != 0.0).then(|| (s[2] as u64, s[3] as usize, s[4]))
}
