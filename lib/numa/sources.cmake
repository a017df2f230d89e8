# Sources of lib/numa (owned by that area).
