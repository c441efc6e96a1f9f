//! The WGSL sources, compiled into the binary. Shaders that use activations get
//! `activation.wgsl` prepended, those that sum within a workgroup `workgroup_sum.wgsl`.

/// One WGSL file under `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    /// Activation functions (a prelude, no entry points).
    Activation,
    /// The workgroup tree sum (a prelude, no entry points).
    WorkgroupSum,
    /// `matmul.wgsl`.
    Matmul,
    /// `elementwise.wgsl`.
    Elementwise,
    /// `reduce.wgsl`.
    Reduce,
    /// `loss.wgsl`.
    Loss,
    /// `optim.wgsl`.
    Optim,
    /// `weighting.wgsl`.
    Weighting,
    /// `guard.wgsl`.
    Guard,
    /// `mixture.wgsl`.
    Mixture,
    /// `grouped.wgsl`.
    Grouped,
    /// `embedding.wgsl`.
    Embedding,
    /// `product.wgsl`.
    Product,
}

const ACTIVATION: &str = include_str!("../shaders/activation.wgsl");
const WORKGROUP_SUM: &str = include_str!("../shaders/workgroup_sum.wgsl");
const MATMUL: &str = include_str!("../shaders/matmul.wgsl");
const ELEMENTWISE: &str = include_str!("../shaders/elementwise.wgsl");
const REDUCE: &str = include_str!("../shaders/reduce.wgsl");
const LOSS: &str = include_str!("../shaders/loss.wgsl");
const OPTIM: &str = include_str!("../shaders/optim.wgsl");
const WEIGHTING: &str = include_str!("../shaders/weighting.wgsl");
const GUARD: &str = include_str!("../shaders/guard.wgsl");
const MIXTURE: &str = include_str!("../shaders/mixture.wgsl");
const GROUPED: &str = include_str!("../shaders/grouped.wgsl");
const EMBEDDING: &str = include_str!("../shaders/embedding.wgsl");
const PRODUCT: &str = include_str!("../shaders/product.wgsl");

impl Shader {
    /// Every shader file.
    pub const ALL: &'static [Shader] = &[
        Shader::Activation,
        Shader::WorkgroupSum,
        Shader::Matmul,
        Shader::Elementwise,
        Shader::Reduce,
        Shader::Loss,
        Shader::Optim,
        Shader::Weighting,
        Shader::Guard,
        Shader::Mixture,
        Shader::Grouped,
        Shader::Embedding,
        Shader::Product,
    ];

    /// The file name under `shaders/`.
    pub fn file(self) -> &'static str {
        match self {
            Shader::Activation => "activation.wgsl",
            Shader::WorkgroupSum => "workgroup_sum.wgsl",
            Shader::Matmul => "matmul.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Optim => "optim.wgsl",
            Shader::Weighting => "weighting.wgsl",
            Shader::Guard => "guard.wgsl",
            Shader::Mixture => "mixture.wgsl",
            Shader::Grouped => "grouped.wgsl",
            Shader::Embedding => "embedding.wgsl",
            Shader::Product => "product.wgsl",
        }
    }

    /// The complete source handed to the compiler (with its prelude).
    pub fn source(self) -> String {
        match self {
            Shader::Activation => ACTIVATION.to_string(),
            Shader::WorkgroupSum => WORKGROUP_SUM.to_string(),
            Shader::Matmul => format!("{ACTIVATION}\n{MATMUL}"),
            Shader::Elementwise => format!("{ACTIVATION}\n{ELEMENTWISE}"),
            Shader::Reduce => REDUCE.to_string(),
            Shader::Loss => format!("{WORKGROUP_SUM}\n{LOSS}"),
            Shader::Optim => OPTIM.to_string(),
            Shader::Weighting => format!("{WORKGROUP_SUM}\n{WEIGHTING}"),
            Shader::Guard => GUARD.to_string(),
            Shader::Mixture => MIXTURE.to_string(),
            Shader::Grouped => format!("{ACTIVATION}\n{GROUPED}"),
            Shader::Embedding => EMBEDDING.to_string(),
            Shader::Product => PRODUCT.to_string(),
        }
    }

    /// Parses and validates the source with naga, without a device.
    pub fn validate(self) -> crate::Result<()> {
        let src = self.source();
        let module = naga::front::wgsl::parse_str(&src)
            .map_err(|e| crate::Error::Shader { file: self.file(), message: e.emit_to_string(&src) })?;
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&module)
            .map_err(|e| crate::Error::Shader { file: self.file(), message: e.emit_to_string(&src) })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Shader;

    #[test]
    fn every_wgsl_file_parses_and_validates_with_naga() {
        for s in Shader::ALL {
            if let Err(e) = s.validate() {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn every_wgsl_file_in_the_folder_is_registered() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
        for entry in std::fs::read_dir(dir).expect("shaders folder") {
            let name = entry.expect("entry").file_name().to_string_lossy().to_string();
            if name.ends_with(".wgsl") {
                assert!(Shader::ALL.iter().any(|s| s.file() == name), "{name} is not in Shader::ALL");
            }
        }
    }
}
