//! Where tensors live: the device every command and training loop computes on unless told
//! otherwise.

use candle_core::Device;

/// The device spar computes on: the first CUDA GPU when built with the `cuda` feature and one
/// is present, the CPU otherwise. Without the feature this is always [`Device::Cpu`]; a CUDA
/// build on a machine without a GPU (or whose driver fails) falls back to the CPU silently.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = Device::new_cuda(0) {
        return device;
    }
    Device::Cpu
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(feature = "cuda"))]
    fn without_cuda_the_device_is_the_cpu() {
        assert!(default_device().is_cpu());
    }
}
