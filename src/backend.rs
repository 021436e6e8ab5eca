//! Backend selection. CPU (ndarray) is always there; CUDA comes with the `cuda` feature.

use burn::backend::Autodiff;

/// The CPU backend: burn's ndarray, with multi-threaded matrix products.
pub type Cpu = burn_ndarray::NdArray<f32>;
/// CPU with automatic differentiation, for training.
pub type CpuTrain = Autodiff<Cpu>;

/// matrixmultiply (burn-ndarray's matrix products) uses one thread per *physical* core by
/// default, which some virtual machines report as 1 for 2 vCPUs. Use every available core
/// unless the user set MATMUL_NUM_THREADS. Call first thing in `main`, before other threads.
pub fn use_all_cores_for_matrix_products() {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY (edition 2024 marks set_var unsafe): called before any other thread exists.
        std::env::set_var("MATMUL_NUM_THREADS", cores.min(4).to_string());
    }
}

pub fn cpu_device() -> burn_ndarray::NdArrayDevice {
    burn_ndarray::NdArrayDevice::Cpu
}

/// Devices a sweep can schedule on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Parses `auto`, `cpu` or a list like `cuda:0,cuda:2`. `auto` means every GPU this build
/// can use, or the CPU when there is none (with a notice).
pub fn parse_devices(text: &str) -> crate::error::InputResult<Vec<Device>> {
    use crate::error::InputError;
    let text = text.trim();
    if text == "auto" {
        let gpus = detect_gpus();
        if gpus.is_empty() {
            eprintln!("note: no GPU found (or this build has no `cuda` feature); running on the CPU");
            return Ok(vec![Device::Cpu]);
        }
        return Ok(gpus);
    }
    text.split(',')
        .map(|part| match part.trim() {
            "cpu" => Ok(Device::Cpu),
            other => {
                let index = other
                    .strip_prefix("cuda:")
                    .and_then(|i| i.parse::<usize>().ok())
                    .ok_or_else(|| InputError::new(format!("unknown device {other:?}; use auto, cpu or cuda:N")).field("--devices"))?;
                if !cfg!(feature = "cuda") {
                    return Err(InputError::new("this build has no GPU support; rebuild with --features cuda").field("--devices"));
                }
                Ok(Device::Cuda(index))
            }
        })
        .collect()
}

/// GPUs visible to this build: none without the `cuda` feature.
pub fn detect_gpus() -> Vec<Device> {
    Vec::new()
}

/// Trains one fold on the named device ("cpu" or "cuda:N").
pub fn run_fold_on(
    device: &str,
    config: &crate::config::Config,
    data: &crate::job::TrainingData,
    fold: usize,
    checkpoint_dir: &std::path::Path,
    on_epoch: &mut dyn FnMut(&crate::train::EpochLog),
) -> anyhow::Result<crate::job::FoldResult> {
    match device {
        "cpu" => crate::job::run_fold::<CpuTrain>(config, data, fold, Some(checkpoint_dir), &cpu_device(), on_epoch),
        other => anyhow::bail!("device {other} is not available in this build"),
    }
}
