# Sources of lib/reference (owned by that area).
