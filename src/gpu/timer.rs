//! GPU timestamp queries: the device time of each dispatch (for benchmarks and profiles),
//! where the adapter supports them.

use super::context::Context;
use super::dispatch::Dispatch;
use crate::error::Result;

impl Context {
    /// The GPU time of each dispatch in milliseconds, each in its own compute pass between
    /// two timestamps, all in one submit. `None` when the adapter has no timestamp queries.
    pub fn profile(&self, dispatches: &[&Dispatch]) -> Result<Option<Vec<f64>>> {
        if !self.adapter().timestamps || dispatches.is_empty() {
            return Ok(None);
        }
        let count = 2 * dispatches.len() as u32;
        let bytes = u64::from(count) * 8;
        let (qs, resolve, staging) = self.scoped("timing kernels", || {
            let qs = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("hydra timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
            for (i, d) in dispatches.iter().enumerate() {
                let writes = wgpu::ComputePassTimestampWrites {
                    query_set: &qs,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                };
                // Texture refreshes (copies) fall outside the timed pass.
                super::dispatch::refresh(&mut enc, d);
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(d.label),
                    timestamp_writes: Some(writes),
                });
                super::dispatch::encode_one(&mut pass, d);
            }
            self.counters.dispatches.fetch_add(dispatches.len() as u64, std::sync::atomic::Ordering::Relaxed);
            enc.resolve_query_set(&qs, 0..count, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, bytes);
            self.submit(enc.finish());
            (qs, resolve, staging)
        })?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&self.map_bytes(&staging, bytes)?);
        drop((qs, resolve));
        let period_ns = f64::from(self.queue.get_timestamp_period());
        Ok(Some(ticks.chunks(2).map(|p| p[1].saturating_sub(p[0]) as f64 * period_ns / 1e6).collect()))
    }
}
