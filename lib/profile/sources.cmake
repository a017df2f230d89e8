# Sources of lib/profile (owned by that area): machine ceilings (read bandwidth, FMA
# peak) and the roofline model. The peak kernels are one Arch-templated family like the
# decode kernels: peak_kernels_<isa>.cpp go into the per-ISA OBJECT libraries that
# kernels/sources.cmake defines (with that ISA's flags); the rest builds at baseline.
list(APPEND SPARQ_SOURCES
  profile/profile.cpp
  profile/machine.cpp
  profile/pinned_arena.cpp
  profile/peak_dispatch.cpp
  profile/read_bandwidth.cpp
  profile/fma_peak.cpp
  profile/roofline.cpp)
foreach(isa IN LISTS SPARQ_KERNEL_ISAS)
  target_sources(sparq_kernels_${isa} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/peak_kernels_${isa}.cpp)
endforeach()
