# Each lib/<area> is its own CMake target, with the areas it may include declared.
#
# An area's headers are reachable as "<area>/x.hpp" only through its include root
# (build/area_include/<area>, holding one link to lib/<area>), which only the area itself
# and the areas that declare it in DEPS see. So an include in the wrong direction fails
# to compile instead of growing a cycle. Targets:
#   sparq_area_<area>  INTERFACE: the include roots and libraries of the area and its DEPS
#                      (what tests and benchmarks of internals link);
#   sparq_<area>       OBJECT: the area's baseline sources (no ISA flags);
#   sparq_<area>_<isa> OBJECT: the area's per-ISA sources, one per SPARQ_KERNEL_ISAS entry.
# The libraries (lib/CMakeLists.txt) are made of these objects.

# Kernel variants, best first; must match SPARQ_FOR_EACH_ARCH in kernels/simd/arch_list.hpp.
set(SPARQ_KERNEL_ISAS avx512 avx2 generic)
# xsimd 8.1's avx512bw target needs F, CD, DQ and BW; VL for the 256-bit forms.
set(SPARQ_ISA_FLAGS_avx512 -mavx512f -mavx512cd -mavx512bw -mavx512dq -mavx512vl -mfma)
set(SPARQ_ISA_FLAGS_avx2 -mavx2 -mfma -mf16c)
set(SPARQ_ISA_FLAGS_generic "")

# sparq_area(<area> SOURCES <baseline sources> [DEPS <areas>] [LIBS <targets>] [PRIVATE_LIBS <targets>])
function(sparq_area area)
  cmake_parse_arguments(PARSE_ARGV 1 A "" "" "SOURCES;DEPS;LIBS;PRIVATE_LIBS")
  set(root ${PROJECT_BINARY_DIR}/area_include/${area})
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${root}/${area} SYMBOLIC)

  add_library(sparq_area_${area} INTERFACE)
  target_include_directories(sparq_area_${area} INTERFACE ${root})
  target_link_libraries(sparq_area_${area} INTERFACE sparq_headers ${A_LIBS})
  foreach(dep IN LISTS A_DEPS)
    target_link_libraries(sparq_area_${area} INTERFACE sparq_area_${dep})
  endforeach()

  add_library(sparq_${area} OBJECT ${A_SOURCES})
  target_link_libraries(sparq_${area} PRIVATE sparq_area_${area} ${A_PRIVATE_LIBS})
  sparq_warnings(sparq_${area})
  set_property(GLOBAL APPEND PROPERTY SPARQ_AREA_OBJECTS_${area} sparq_${area})
endfunction()

# sparq_area_isa_family(<area> <family>...): lib/<area>/<family>_<isa>.cpp for every ISA,
# each built only with its ISA's flags (instantiations of <family>_inl.hpp).
function(sparq_area_isa_family area)
  foreach(isa IN LISTS SPARQ_KERNEL_ISAS)
    if(NOT TARGET sparq_${area}_${isa})
      add_library(sparq_${area}_${isa} OBJECT)
      target_compile_options(sparq_${area}_${isa} PRIVATE ${SPARQ_ISA_FLAGS_${isa}})
      target_link_libraries(sparq_${area}_${isa} PRIVATE sparq_area_${area})
      sparq_warnings(sparq_${area}_${isa})
      if(isa STREQUAL "avx512" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
        # GCC 12 warns about the deliberately undefined pass-through operand inside its own
        # AVX-512 intrinsics headers (GCC bug 105593), once per intrinsic use.
        target_compile_options(sparq_${area}_${isa} PRIVATE -Wno-maybe-uninitialized -Wno-uninitialized)
      endif()
      set_property(GLOBAL APPEND PROPERTY SPARQ_AREA_OBJECTS_${area} sparq_${area}_${isa})
      set_property(GLOBAL APPEND PROPERTY SPARQ_ISA_OBJECT_TARGETS sparq_${area}_${isa})
    endif()
    foreach(family IN LISTS ARGN)
      target_sources(sparq_${area}_${isa} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/${family}_${isa}.cpp)
    endforeach()
  endforeach()
endfunction()

# sparq_area_isa_source(<area> <isa> <source> [extra flags...]): one more file for one ISA
# only (e.g. the AVX512-BF16 loops).
function(sparq_area_isa_source area isa source)
  target_sources(sparq_${area}_${isa} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/${source})
  if(ARGN)
    set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/${source} PROPERTIES COMPILE_OPTIONS "${ARGN}")
  endif()
endfunction()

# The object files of the given areas (baseline and per-ISA), for add_library().
function(sparq_area_objects out)
  set(objs "")
  foreach(area IN LISTS ARGN)
    get_property(targets GLOBAL PROPERTY SPARQ_AREA_OBJECTS_${area})
    foreach(t IN LISTS targets)
      list(APPEND objs $<TARGET_OBJECTS:${t}>)
    endforeach()
  endforeach()
  set(${out} ${objs} PARENT_SCOPE)
endfunction()
