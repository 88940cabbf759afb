//! Scalar reference conversions used by tests to check the SIMD paths.
