//! The `hydra` command: parses its arguments and calls [`hydra::commands`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hydra::commands::{affinity, compare, eval, info, predict, run_bench, train, AffinityArgs};
use hydra::experiment;

#[derive(Parser)]
#[command(name = "hydra", version, about = "Multi-task training on the GPU, in Rust and WGSL")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a multi-task model from a config (default: the built-in energy example, with
    /// single-task baselines and the multi-task gain).
    Train {
        /// The TOML config (default: examples/energy.toml, compiled in).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also train one single-task model per task and report Δm% (on by default without --config).
        #[arg(long)]
        baselines: bool,
        /// Write the final metrics as JSON.
        #[arg(long)]
        metrics_json: Option<PathBuf>,
        /// Write one JSON line per evaluation.
        #[arg(long)]
        log: Option<PathBuf>,
        /// Draw per-task training/validation curves and task weights as SVG.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Print nothing but the final table.
        #[arg(long, short)]
        quiet: bool,
        /// Start from this checkpoint's parameters (heads of new tasks start fresh).
        #[arg(long)]
        init: Option<PathBuf>,
        /// Save the trained model here (safetensors, written atomically).
        #[arg(long)]
        save: Option<PathBuf>,
        /// With --save: the precision of the saved model's tensors, f32 (the default), f16 or
        /// bf16. The training state stays f32; --resume needs an f32 file.
        #[arg(long, requires = "save", default_value = "f32")]
        save_dtype: String,
        /// With --save: also write the whole training state there every N steps.
        #[arg(long, requires = "save")]
        checkpoint_every: Option<u64>,
        /// Continue the run saved in this checkpoint exactly, to the end of the configured run.
        #[arg(long, conflicts_with = "init")]
        resume: Option<PathBuf>,
        /// Data-parallel over MPI: start with `mpirun -np N hydra train --distributed …`; every
        /// rank takes its share of each batch (batch_size stays the global batch). Needs a
        /// hydra built with `--features mpi`.
        #[arg(long)]
        distributed: bool,
    },
    /// Evaluate a checkpoint on a split of the config's data.
    Eval {
        /// The TOML config whose data to use.
        #[arg(long)]
        config: PathBuf,
        /// The checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        /// train, val or test.
        #[arg(long, default_value = "test")]
        split: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Predict every task for the rows of a CSV file (one output column per task).
    Predict {
        /// The checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        /// CSV with (at least) the feature columns the model was trained on.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the predictions.
        #[arg(long)]
        output: PathBuf,
    },
    /// Train the config once per weighting method (and the single-task baselines once) and
    /// print a Markdown table: per-task test metrics, Δm%, seconds per epoch.
    Compare {
        /// The TOML config (its `[weighting]` section is replaced by each method in turn).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Methods to compare (default: all).
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        /// Where gradient methods take gradients: params or representation.
        #[arg(long, default_value = "params")]
        target: String,
        /// Seeds per method (from the config's on; each draws the split and the initial
        /// parameters): the table shows mean ± std.
        #[arg(long, default_value_t = 1)]
        seeds: usize,
        /// Which epoch each run keeps: val_loss (the lowest validation loss) or delta_m (the
        /// best validation Δm% against the single-task baselines, LibMTL's choice).
        #[arg(long, default_value = "val_loss")]
        select: String,
    },
    /// Train as the config says while measuring how much each task's own step helps every
    /// task (TAG's lookahead affinity), then print the matrix, its first-order estimate and the
    /// recommended task groups.
    Affinity {
        /// The TOML config (default: the built-in energy example).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Measure every this many steps.
        #[arg(long, default_value_t = 10)]
        every: usize,
        /// Recommend this number of groups only (default: every number from 1 to the tasks').
        #[arg(long)]
        groups: Option<usize>,
        /// Write {"tasks", "affinity", "estimate", "groups", …} as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a heatmap of the affinity matrix here (SVG).
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Show the adapter, backend, driver and limits, and run a matmul self-check.
    Info,
    /// Benchmark the kernels on this adapter and print a table (or JSON lines).
    Bench {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Run only this benchmark: matmul, act_forward, col_sum, sum, kernels (the other
        /// kernel families and the dispatch overhead), train_step.
        #[arg(long)]
        only: Option<String>,
        /// Square matmul sizes, comma-separated (e.g. 256,1024).
        #[arg(long, value_delimiter = ',', default_values_t = [128usize, 256, 512, 1024])]
        sizes: Vec<usize>,
        /// Seconds spent on each figure (at least 3 runs each).
        #[arg(long, default_value_t = 2.0)]
        budget: f64,
        /// Autotune the matmul form for this adapter first (cached on disk for later runs).
        #[arg(long)]
        tune: bool,
        /// Also measure the training step at batch 64…4096 and trunk width 64…1024.
        #[arg(long)]
        scaling: bool,
    },
}

fn main() -> ExitCode {
    // Before anything starts a thread or the driver (see the function's notes).
    hydra::gpu::software::prefer_software_threads();
    hydra::gpu::software::private_runtime_dir();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train {
            config,
            baselines,
            metrics_json,
            log,
            plot,
            quiet,
            init,
            save,
            save_dtype,
            checkpoint_every,
            resume,
            distributed,
        } => {
            let opts = experiment::RunOptions {
                init,
                resume,
                checkpoint: match (&save, checkpoint_every) {
                    (Some(p), Some(n)) if n > 0 => Some((p.clone(), n)),
                    _ => None,
                },
                baselines,
                select_delta_m: None,
                distributed,
            };
            let outputs = hydra::commands::TrainOutputs { metrics_json, log, plot, save, save_dtype };
            train(config, opts, outputs, quiet)
        }
        Command::Eval { config, checkpoint, split, json } => eval(&config, &checkpoint, &split, json),
        Command::Predict { checkpoint, input, output } => predict(&checkpoint, &input, &output),
        Command::Compare { config, methods, target, seeds, select } => {
            compare(config, &methods, &target, seeds, &select)
        }
        Command::Affinity { config, every, groups, json, svg } => {
            affinity(AffinityArgs { config, every, groups, json, svg })
        }
        Command::Info => info(),
        Command::Bench { json, only, sizes, budget, tune, scaling } => {
            run_bench(json, only.as_deref(), &sizes, budget, tune, scaling)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hydra: {e}");
            ExitCode::FAILURE
        }
    }
}
