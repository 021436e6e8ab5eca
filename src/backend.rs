//! Backend selection. CPU (burn's flex) is always there; CUDA comes with the `cuda` feature.

use std::sync::{Mutex, PoisonError};

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::InputError;

/// The CPU backend: burn's flex, float32, matrix products by the gemm crate on every core
/// (rayon's pool: RAYON_NUM_THREADS caps it).
pub type Cpu = burn::backend::Flex;
/// CPU with automatic differentiation, for training.
pub type CpuTrain = Autodiff<Cpu>;

pub fn cpu_device() -> burn::backend::flex::FlexDevice {
    burn::backend::flex::FlexDevice
}

/// Held from `B::seed` to the last draw that must follow from it. burn's CPU backend keeps one
/// generator for the whole process (and `seed` replaces it), so two runs seeding and drawing at
/// once (a sweep's parallel jobs, tests in one binary) would take each other's numbers.
static SEEDED_DRAWS: Mutex<()> = Mutex::new(());

/// Seeds the backend's generator and runs `draw` while no other `seeded` call can seed or draw:
/// what `draw` takes from the generator depends on `seed` alone. Every draw from the backend's
/// generator that should be reproducible goes through here, and parameters are drawn lazily by
/// burn, so `draw` should return modules through [`initialized`].
pub fn seeded<B: Backend, T>(device: &B::Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    // A panic inside another `draw` leaves nothing half-done that matters here: `seed` resets.
    let _lock = SEEDED_DRAWS.lock().unwrap_or_else(PoisonError::into_inner);
    B::seed(device, seed);
    draw()
}

/// The module with every parameter drawn now. burn initialises parameters on first use, which
/// for a new model would be its first forward pass, long after a [`seeded`] block has ended.
pub fn initialized<B: Backend, M: Module<B>>(module: M) -> M {
    struct Draw;
    impl<B: Backend> ModuleVisitor<B> for Draw {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            param.val();
        }
    }
    module.visit(&mut Draw);
    module
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

/// `cpu` or `cuda:N`. A `cuda:N` is refused by a build without the `cuda` feature, so the
/// command line says so before anything runs.
impl std::str::FromStr for Device {
    type Err = InputError;

    fn from_str(text: &str) -> Result<Device, InputError> {
        let text = text.trim();
        if text == "cpu" {
            return Ok(Device::Cpu);
        }
        let index =
            text.strip_prefix("cuda:").and_then(|i| i.parse::<usize>().ok()).ok_or_else(|| {
                InputError::new(format!("unknown device {text:?}; use cpu or cuda:N"))
            })?;
        if !cfg!(feature = "cuda") {
            return Err(unavailable(text));
        }
        Ok(Device::Cuda(index))
    }
}

/// Where a sweep's jobs run: `auto` (every GPU, else the CPU) or a list like `cuda:0,cuda:2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    List(Vec<Device>),
}

impl std::str::FromStr for DeviceChoice {
    type Err = InputError;

    fn from_str(text: &str) -> Result<DeviceChoice, InputError> {
        if text.trim() == "auto" {
            return Ok(DeviceChoice::Auto);
        }
        let devices = text.split(',').map(str::parse).collect::<Result<Vec<Device>, _>>();
        // An unknown name gets the hint for a list; an unavailable one keeps its reason.
        devices.map(DeviceChoice::List).map_err(|e| match e.message.split_once("; use") {
            Some((unknown, _)) => {
                InputError::new(format!("{unknown}; use auto, cpu or a list like cuda:0,cuda:2"))
            }
            None => e,
        })
    }
}

impl DeviceChoice {
    /// The devices to schedule on. `auto` means every GPU this build can use, or the CPU
    /// when there is none (with a notice, logged).
    pub fn resolve(&self) -> Vec<Device> {
        match self {
            DeviceChoice::List(devices) => devices.clone(),
            DeviceChoice::Auto => {
                let gpus = detect_gpus();
                if gpus.is_empty() {
                    log::warn!(
                        "note: no GPU found (or this build has no `cuda` feature); \
                         running on the CPU"
                    );
                    return vec![Device::Cpu];
                }
                gpus
            }
        }
    }
}

/// GPUs visible to this build: none without the `cuda` feature. With it, the NVIDIA device
/// nodes (no CUDA call, so a machine without a driver just has none), narrowed by
/// CUDA_VISIBLE_DEVICES when set; CUDA renumbers visible devices from 0.
pub fn detect_gpus() -> Vec<Device> {
    if !cfg!(feature = "cuda") {
        return Vec::new();
    }
    let nodes = std::fs::read_dir("/dev")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name().to_str().and_then(|n| n.strip_prefix("nvidia")).is_some_and(
                        |rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()),
                    )
                })
                .count()
        })
        .unwrap_or(0);
    let count = match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(list) if list.trim().is_empty() => 0,
        Ok(list) => list.split(',').count().min(nodes),
        Err(_) => nodes,
    };
    (0..count).map(Device::Cuda).collect()
}

#[cfg(feature = "cuda")]
pub mod gpu {
    //! burn-cuda backends, one per precision.
    use burn::backend::{cuda::CudaDevice, Autodiff, Cuda};
    use burn::tensor::{bf16, f16};

    pub type GpuF32 = Autodiff<Cuda<f32, i32>>;
    pub type GpuBf16 = Autodiff<Cuda<bf16, i32>>;
    pub type GpuF16 = Autodiff<Cuda<f16, i32>>;

    pub fn device(index: usize) -> CudaDevice {
        CudaDevice { index }
    }
}

/// The usage error for a device this build cannot train on.
pub fn unavailable(device: &str) -> InputError {
    InputError::new(format!(
        "device {device} is not available in this build (cpu, or cuda:N with --features cuda)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn draw(seed: u64) -> Vec<f32> {
        seeded::<Cpu, _>(&cpu_device(), seed, || {
            (0..20)
                .flat_map(|_| {
                    Tensor::<Cpu, 1>::random([8], Distribution::Default, &cpu_device())
                        .into_data()
                        .to_vec::<f32>()
                        .unwrap()
                })
                .collect()
        })
    }

    #[test]
    fn regression_seeded_draws_running_at_once_each_follow_their_own_seed() {
        let alone: Vec<Vec<f32>> = (0..4).map(draw).collect();
        let threads: Vec<_> = (0..4)
            .map(|seed| std::thread::spawn(move || (0..50).map(|_| draw(seed)).collect::<Vec<_>>()))
            .collect();
        for (seed, thread) in threads.into_iter().enumerate() {
            for (i, drawn) in thread.join().unwrap().into_iter().enumerate() {
                assert_eq!(drawn, alone[seed], "seed {seed}, repetition {i}");
            }
        }
    }
}
