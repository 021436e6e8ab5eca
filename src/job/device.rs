//! Where a fold trains: the device names of the command line (`cpu`, `cuda:N`) turned into a
//! burn backend, one per precision, chosen at run time. Generic code below this takes the
//! backend as a type parameter; this is the one place that picks it.

use std::path::Path;

use super::bench::{self, EpochBench};
use super::{run_fold, FoldRun, TrainingData};
#[cfg(feature = "cuda")]
use crate::backend::gpu;
use crate::backend::{cpu_device, detect_gpus, unavailable, CpuTrain, Device};
use crate::config::{Config, Precision};
use crate::error::{InputError, InputResult};
use crate::train::EpochLog;

/// Trains one fold on the device: its result, or where it diverged.
pub fn run_fold_on(
    device: &Device,
    config: &Config,
    data: &TrainingData,
    fold: usize,
    checkpoint_dir: Option<&Path>,
    on_epoch: &mut dyn FnMut(&EpochLog),
) -> anyhow::Result<FoldRun> {
    if *device == Device::Cpu {
        return run_fold::<CpuTrain>(config, data, fold, checkpoint_dir, &cpu_device(), on_epoch);
    }
    check_gpu_present(device)?;
    #[cfg(feature = "cuda")]
    if let Device::Cuda(index) = *device {
        let dev = gpu::device(index);
        let dir = checkpoint_dir;
        return match config.train.precision {
            Precision::F32 => run_fold::<gpu::GpuF32>(config, data, fold, dir, &dev, on_epoch),
            Precision::Bf16 => run_fold::<gpu::GpuBf16>(config, data, fold, dir, &dev, on_epoch),
            Precision::F16 => run_fold::<gpu::GpuF16>(config, data, fold, dir, &dev, on_epoch),
        };
    }
    Err(unavailable(&device.to_string()).field("device").into())
}

/// A `cuda:N` that this machine does not have is a usage error, found before CUDA is touched
/// (cudarc panics when it cannot load the driver).
fn check_gpu_present(device: &Device) -> InputResult<()> {
    if let Device::Cuda(index) = *device {
        let found = detect_gpus().len();
        if cfg!(feature = "cuda") && index >= found {
            return Err(InputError::new(format!(
                "no GPU {device} on this machine ({found} found)"
            ))
            .field("device"));
        }
    }
    Ok(())
}

/// The epoch benchmark on the named device in the given precision (for `foldsweep bench-epoch`).
pub fn bench_epoch_on(
    device: &Device,
    precision: Precision,
    o: &EpochBench,
) -> anyhow::Result<String> {
    if *device == Device::Cpu {
        if precision != Precision::F32 {
            return Err(InputError::new("reduced precision needs a GPU").field("precision").into());
        }
        return Ok(bench::run::<CpuTrain>(o, &cpu_device(), "cpu"));
    }
    check_gpu_present(device)?;
    #[cfg(feature = "cuda")]
    if let Device::Cuda(index) = *device {
        let dev = gpu::device(index);
        let name = format!("{device} {precision:?}");
        return Ok(match precision {
            Precision::F32 => bench::run::<gpu::GpuF32>(o, &dev, &name),
            Precision::Bf16 => bench::run::<gpu::GpuBf16>(o, &dev, &name),
            Precision::F16 => bench::run::<gpu::GpuF16>(o, &dev, &name),
        });
    }
    Err(unavailable(&device.to_string()).field("device").into())
}
