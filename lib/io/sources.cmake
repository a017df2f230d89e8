# Sources of lib/io (owned by that area).
