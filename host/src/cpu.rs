//! What the CPU offers that changes which kernels ONNX Runtime runs.
//!
//! Two uses: `STREAMHOST_INT8_MODELS=auto` runs int8 models only where the
//! CPU has integer dot-product instructions, and the int8 gate keys its cached
//! verdicts by the features that select ONNX Runtime's kernels, since an int8
//! model that is exact with one kernel family need not be with another (AVX2's
//! int8 path sums pairs in 16 bits and saturates; VNNI's does not). A verdict
//! proven on one machine is reused on another only if these features match.

/// Whether this CPU has the integer dot-product instructions ONNX Runtime's
/// int8 kernels are fast and exact with (see `config::Int8Models`).
pub fn has_int8_dot_product() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vnni")
            || std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The kernel-selecting features this CPU has, as a stable text such as
/// `x86_64:avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni,avxvnni`.
pub fn kernel_features() -> String {
    let mut have: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as x86;
        let probes = [
            ("avx2", x86!("avx2")),
            ("fma", x86!("fma")),
            ("avx512f", x86!("avx512f")),
            ("avx512bw", x86!("avx512bw")),
            ("avx512vl", x86!("avx512vl")),
            ("avx512vnni", x86!("avx512vnni")),
            ("avxvnni", x86!("avxvnni")),
        ];
        have.extend(probes.iter().filter(|(_, on)| *on).map(|(name, _)| *name));
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as arm;
        let probes = [("dotprod", arm!("dotprod")), ("i8mm", arm!("i8mm"))];
        have.extend(probes.iter().filter(|(_, on)| *on).map(|(name, _)| *name));
    }
    format!("{}:{}", std::env::consts::ARCH, have.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_features_name_the_arch_and_agree_with_the_dot_product_probe() {
        let f = kernel_features();
        assert!(f.starts_with(std::env::consts::ARCH), "{f}");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(has_int8_dot_product(), f.contains("vnni"), "{f}");
        }
    }
}
