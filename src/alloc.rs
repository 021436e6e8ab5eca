//! The process allocator: jemalloc, configured for training's multi-GB tensors.
//!
//! Every CPU training step allocates and frees gigabytes: burn-flex builds each matrix
//! product's output (the bilinear weight's gradient alone is 1.8 GB) as a zeroed buffer and
//! then copies it into a 64-byte-aligned one. With glibc each of those is a fresh mmap that the
//! kernel zeroes 4 KiB page by page (7.4M page faults in 5 full-model steps). Measured with
//! `foldsweep bench-epoch` (2 threads): full model 4.9 -> 3.9 s/step, low-rank 0.027 -> 0.019.
//!
//! - `thp:always`: transparent huge pages for jemalloc's mappings (the kernel's default mode
//!   here is `madvise`), and zeroing of reused memory by memset instead of purge-and-refault.
//! - `oversize_threshold:0`: no separate arena for blocks over 8 MiB, whose freed memory
//!   jemalloc would hand back to the kernel at once; they are reused like the rest.
//!
//! `_RJEM_MALLOC_CONF` in the environment still overrides these at run time. The allocator is
//! the binary's choice, not the library's (as in ripgrep): `main.rs` and the epoch benchmark
//! include this file; the library and its tests use the system allocator.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Read by jemalloc before `main`; `#[used]` keeps the linker from dropping it.
#[used]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: Option<&'static std::ffi::c_char> =
    Some(unsafe { &*c"thp:always,oversize_threshold:0".as_ptr() });
