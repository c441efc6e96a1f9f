//! The pipeline cache: one compute pipeline per (shader, entry point, override constants).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::shaders::Shader;

/// Identifies a pipeline: shader file, entry point and override constants (sorted by name).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    /// Shader file.
    pub shader: Shader,
    /// Entry point.
    pub entry: &'static str,
    /// Override constants as (name, value bits), sorted by name.
    pub constants: Vec<(&'static str, u64)>,
}

impl PipelineKey {
    /// A key from constants in any order.
    pub fn new(shader: Shader, entry: &'static str, constants: &[(&'static str, f64)]) -> Self {
        let mut c: Vec<(&'static str, u64)> = constants.iter().map(|(k, v)| (*k, v.to_bits())).collect();
        c.sort_by(|a, b| a.0.cmp(b.0));
        PipelineKey { shader, entry, constants: c }
    }
}

/// Caches shader modules and compute pipelines so each is compiled once per context.
pub struct PipelineCache {
    device: wgpu::Device,
    modules: Mutex<HashMap<Shader, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
}

impl PipelineCache {
    pub(crate) fn new(device: wgpu::Device) -> Self {
        PipelineCache { device, modules: Mutex::default(), pipelines: Mutex::default() }
    }

    /// Number of distinct pipelines compiled so far.
    pub fn len(&self) -> usize {
        self.pipelines.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Whether nothing has been compiled yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn module(&self, shader: Shader) -> Arc<wgpu::ShaderModule> {
        let mut m = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(shader)
            .or_insert_with(|| {
                Arc::new(self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.file()),
                    source: wgpu::ShaderSource::Wgsl(shader.source().into()),
                }))
            })
            .clone()
    }

    /// The pipeline for `key`, compiled on first use. Call inside `Context::scoped` so a
    /// compilation error becomes an [`crate::Error`].
    pub(crate) fn get(&self, key: &PipelineKey) -> Arc<wgpu::ComputePipeline> {
        if let Some(p) = self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return p.clone();
        }
        let module = self.module(key.shader);
        let constants: Vec<(&str, f64)> = key.constants.iter().map(|(k, v)| (*k, f64::from_bits(*v))).collect();
        let pipeline = Arc::new(self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(key.entry),
            layout: None,
            module: &module,
            entry_point: Some(key.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        }));
        self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), pipeline.clone());
        pipeline
    }
}
