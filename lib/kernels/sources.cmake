# Sources of lib/kernels (owned by that area).
