//! Where networks run: `--device auto|cpu|cuda|cuda:N`.
//!
//! One binary serves both kinds of machine. The linker drops
//! `libtorch_cuda.so` from a tch binary (nothing references it by symbol), so
//! a CUDA device is reached by loading that library at run time, when one
//! is asked for: its static initialisers register libtorch's CUDA backend.
//! A CPU-only install (the default set-up, without the CUDA libraries that
//! library needs) then runs exactly as before, and `--device cuda` there is
//! one clear error saying what is missing.

use anyhow::{bail, Result};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use tch::Device;

/// The device asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceArg {
    /// The first CUDA device when one is usable, else the CPU.
    #[default]
    Auto,
    /// The CPU (bit-identical to the reference on the CPU).
    Cpu,
    /// CUDA device N (`cuda` = `cuda:0`).
    Cuda(usize),
}

impl FromStr for DeviceArg {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(DeviceArg::Auto),
            "cpu" => Ok(DeviceArg::Cpu),
            "cuda" => Ok(DeviceArg::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceArg::Cuda)
                .ok_or_else(|| format!("'{s}' is not a device (auto, cpu, cuda or cuda:N)")),
        }
    }
}

impl fmt::Display for DeviceArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceArg::Auto => f.write_str("auto"),
            DeviceArg::Cpu => f.write_str("cpu"),
            DeviceArg::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// A device's name as `run.json` records it (`cpu`, `cuda:0`, ...).
pub fn name(d: Device) -> String {
    match d {
        Device::Cuda(n) => format!("cuda:{n}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
        Device::Cpu => "cpu".into(),
    }
}

/// Loads libtorch's CUDA part once; `Err` says why it is not usable.
fn cuda_loaded() -> &'static std::result::Result<(), String> {
    static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    LOADED.get_or_init(|| {
        // SAFETY: loading a shared library runs its initialisers; libtorch_cuda's
        // only register the CUDA backend with the libtorch already loaded. The
        // library stays loaded for the life of the process (kept in the static).
        static LIB: OnceLock<libloading::Library> = OnceLock::new();
        let lib = unsafe {
            libloading::os::unix::Library::open(
                Some("libtorch_cuda.so"),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
            )
        }
        .map_err(|e| e.to_string())?;
        let _ = LIB.set(lib.into());
        Ok(())
    })
}

/// Why no CUDA device `n` is usable, or `None` when it is.
fn cuda_unusable(n: usize) -> Option<String> {
    if let Err(e) = cuda_loaded() {
        let first = e.lines().next().unwrap_or(e);
        return Some(format!(
            "libtorch's CUDA part could not be loaded ({first}); install the CUDA libraries with `make cuda` (scripts/env.sh --cuda)"
        ));
    }
    if !tch::Cuda::is_available() {
        return Some("libtorch's CUDA part is loaded but CUDA sees no GPU (no driver, or no device visible)".into());
    }
    let count = tch::Cuda::device_count().max(0) as usize;
    (n >= count).then(|| format!("there are {count} CUDA device(s) (cuda:0..cuda:{})", count.saturating_sub(1)))
}

/// The device `arg` names on this machine, and why CUDA is not used when
/// `auto` falls back to the CPU (shown by `bench`). `cuda[:N]` that is not
/// usable is an error saying why.
pub fn resolve(arg: DeviceArg) -> Result<(Device, Option<String>)> {
    match arg {
        DeviceArg::Cpu => Ok((Device::Cpu, None)),
        DeviceArg::Cuda(n) => match cuda_unusable(n) {
            None => Ok((Device::Cuda(n), None)),
            Some(why) => bail!("--device {arg}: no usable CUDA device: {why}; use --device cpu"),
        },
        DeviceArg::Auto => match cuda_unusable(0) {
            None => Ok((Device::Cuda(0), None)),
            Some(why) => Ok((Device::Cpu, Some(why))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        assert_eq!("auto".parse::<DeviceArg>(), Ok(DeviceArg::Auto));
        assert_eq!("cpu".parse::<DeviceArg>(), Ok(DeviceArg::Cpu));
        assert_eq!("cuda".parse::<DeviceArg>(), Ok(DeviceArg::Cuda(0)));
        assert_eq!("cuda:3".parse::<DeviceArg>(), Ok(DeviceArg::Cuda(3)));
        assert_eq!("gpu".parse::<DeviceArg>(), Err("'gpu' is not a device (auto, cpu, cuda or cuda:N)".into()));
        assert_eq!("cuda:x".parse::<DeviceArg>().unwrap_err(), "'cuda:x' is not a device (auto, cpu, cuda or cuda:N)");
        assert_eq!(DeviceArg::Cuda(2).to_string(), "cuda:2");
        assert_eq!(name(Device::Cuda(1)), "cuda:1");
    }
}
