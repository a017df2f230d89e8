# Sources of lib/cache (owned by that area).
