# Sources of lib/profile (owned by that area).
