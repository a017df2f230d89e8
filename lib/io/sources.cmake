# Sources of lib/io (owned by that area): .npy reading/writing and atomic file replacement.
list(APPEND SPARQ_SOURCES io/npy.cpp io/npy_header.cpp io/atomic_file.cpp)
