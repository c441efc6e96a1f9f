//! `hydra._native`: the Rust side of the Python package. The Python layer (`hydra/`) checks
//! and converts arrays and names; this one trains, predicts and weights with the library,
//! releasing the GIL while the GPU works.

mod errors;
mod model;

use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use hydra::mtl::gpu::SlotState;
use hydra::mtl::weighting::{registry, Gram, Target, Weighter};

use errors::to_py;

/// The adapter Hydra opens: name, backend, driver, device type.
#[pyfunction]
fn info(py: Python<'_>) -> PyResult<Py<PyDict>> {
    let ctx = py.allow_threads(hydra::Context::new).map_err(to_py)?;
    let a = ctx.adapter();
    let d = PyDict::new(py);
    d.set_item("adapter", &a.name)?;
    d.set_item("backend", &a.backend)?;
    d.set_item("driver", &a.driver)?;
    d.set_item("driver_info", &a.driver_info)?;
    Ok(d.unbind())
}

/// Every weighting method's config name, in the registry's order.
#[pyfunction]
fn methods() -> Vec<&'static str> {
    registry::names()
}

/// A weighting method's coefficients for one step: `matrix` is the `[T, P]` task gradients
/// (`is_gram` false) or their `[T, T]` Gram matrix; `params_toml` the method's `[weighting]`
/// keys. Methods with state across steps give their first step's coefficients.
#[pyfunction]
fn coefficients<'py>(
    py: Python<'py>,
    params_toml: &str,
    matrix: PyReadonlyArray2<'py, f64>,
    losses: PyReadonlyArray1<'py, f64>,
    is_gram: bool,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let raw: hydra::config::WeightingSection =
        toml::from_str(params_toml).map_err(|e| errors::ConfigError::new_err(format!("weighting: {e}")))?;
    let (method, _) = hydra::config::weighting_from_section(&raw).map_err(to_py)?;
    let m = matrix.as_array();
    let losses: Vec<f64> = losses.as_array().to_vec();
    let t = m.nrows();
    if losses.len() != t {
        return Err(errors::DataError::new_err(format!("{} losses for {t} tasks", losses.len())));
    }
    let rows: Vec<Vec<f64>> = m.outer_iter().map(|r| r.to_vec()).collect();
    let gram = if is_gram {
        if m.ncols() != t {
            return Err(errors::DataError::new_err(format!("a Gram matrix is square, not {t}×{}", m.ncols())));
        }
        Gram::new(t, rows.concat())
    } else {
        Gram::of(&rows)
    };
    let mut w = Weighter::new(method, Target::Params, &vec![1.0; t], 0);
    let plan = match method.slot_state() {
        // The first step: the moving averages start at zero.
        SlotState::Momentum => {
            let mut joint = vec![0.0; 4 * t * t];
            for i in 0..t {
                for j in 0..t {
                    joint[i * 2 * t + j] = gram.at(i, j);
                }
            }
            w.plan(&Gram::new(2 * t, joint), &losses, 1e-3, None)
        }
        SlotState::SquaredSum => {
            if is_gram {
                return Err(errors::DataError::new_err(
                    "excess_mtl needs the gradients themselves (its statistic is elementwise), not their Gram matrix",
                ));
            }
            let stats: Vec<f64> = rows.iter().map(|r| r.iter().map(|g| g * g / (g * g + 1e-7).sqrt()).sum()).collect();
            w.plan(&gram, &losses, 1e-3, Some(&stats))
        }
        SlotState::None => w.plan(&gram, &losses, 1e-3, None),
    }
    .map_err(to_py)?;
    // d = Σ_t c_t g_t (with moving averages, those of this step's gradients: the averages are 0).
    Ok(PyArray1::from_vec(py, plan.coef[..t].to_vec()))
}

/// A built-in dataset's columns: name and cells (text), for `hydra.datasets.load`.
#[pyfunction]
fn dataset_columns(name: &str) -> PyResult<Vec<(String, Vec<String>)>> {
    let table = match hydra::data::builtin::load(name, [0.8, 0.1, 0.1], 0, 0.5, None).map_err(to_py)? {
        hydra::data::builtin::Source::One(t) => t,
        hydra::data::builtin::Source::Three(_) => {
            return Err(errors::DataError::new_err(format!(
                "{name:?} comes split in three; load one of: energy, parkinsons, digits, mmoe, recsys"
            )))
        }
    };
    Ok((0..table.header.len())
        .map(|c| (table.header[c].clone(), table.column_cells(c).map(str::to_string).collect()))
        .collect())
}

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(info, m)?)?;
    m.add_function(wrap_pyfunction!(methods, m)?)?;
    m.add_function(wrap_pyfunction!(coefficients, m)?)?;
    m.add_function(wrap_pyfunction!(dataset_columns, m)?)?;
    m.add_class::<model::Model>()?;
    errors::register(m)?;
    Ok(())
}
