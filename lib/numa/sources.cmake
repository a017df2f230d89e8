# NUMA topology and placement.
list(APPEND SPARQ_SOURCES numa/block_placement.cpp)
