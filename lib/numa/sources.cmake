# NUMA: topology (hwloc), placement policies for the block pool, per-node TBB arenas.
list(APPEND SPARQ_SOURCES
  numa/topology.cpp
  numa/synthetic.cpp
  numa/head_assignment.cpp
  numa/memory_binder.cpp
  numa/node_arenas.cpp
  numa/context.cpp
  numa/placement.cpp
  numa/node_decode.cpp
  numa/probe.cpp
  numa/resident_bytes.cpp)
