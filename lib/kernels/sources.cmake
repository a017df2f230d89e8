# Sources of lib/kernels (owned by that area).
#
# Baseline TUs (dispatch, validation, threading) go into SPARQ_SOURCES. ISA-specific code
# is compiled only in the per-ISA OBJECT libraries below, each with its own flags, so the
# library runs on any x86-64 (no -march=native). The ISA list must match
# SPARQ_FOR_EACH_ARCH in arch_list.hpp.
list(APPEND SPARQ_SOURCES kernels/isa.cpp kernels/decode.cpp kernels/dense_decode.cpp)

set(SPARQ_KERNEL_ISAS avx512 avx2 generic)
# xsimd 8.1's avx512bw target needs F, CD, DQ and BW; VL for the 256-bit forms.
set(SPARQ_ISA_FLAGS_avx512 -mavx512f -mavx512cd -mavx512bw -mavx512dq -mavx512vl -mfma)
set(SPARQ_ISA_FLAGS_avx2 -mavx2 -mfma -mf16c)
set(SPARQ_ISA_FLAGS_generic "")

foreach(isa IN LISTS SPARQ_KERNEL_ISAS)
  add_library(sparq_kernels_${isa} OBJECT)
  target_compile_options(sparq_kernels_${isa} PRIVATE ${SPARQ_ISA_FLAGS_${isa}})
  target_include_directories(sparq_kernels_${isa}
    PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include ${PROJECT_SOURCE_DIR}/lib)
  target_link_libraries(sparq_kernels_${isa} PRIVATE xsimd TBB::tbb)
  sparq_warnings(sparq_kernels_${isa})
  if(isa STREQUAL "avx512" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 warns about the deliberately undefined pass-through operand inside its own
    # AVX-512 intrinsics headers (GCC bug 105593), once per intrinsic use.
    # The same templates are built for avx2 and generic with these warnings on.
    target_compile_options(sparq_kernels_${isa} PRIVATE -Wno-maybe-uninitialized -Wno-uninitialized)
  endif()
  list(APPEND SPARQ_OBJECT_LIBS sparq_kernels_${isa})
endforeach()

# A kernel family is <name>_<isa>.cpp for every ISA (instantiations of <name>_inl.hpp);
# adding one is one line: sparq_add_kernel_family(sparq_stage1).
function(sparq_add_kernel_family name)
  foreach(isa IN LISTS SPARQ_KERNEL_ISAS)
    target_sources(sparq_kernels_${isa} PRIVATE ${PROJECT_SOURCE_DIR}/lib/kernels/${name}_${isa}.cpp)
  endforeach()
endfunction()

sparq_add_kernel_family(dense_decode)
# Dense decode's AVX512-BF16 loops: one file, one more flag (dense_bf16_dot.hpp).
target_sources(sparq_kernels_avx512 PRIVATE ${PROJECT_SOURCE_DIR}/lib/kernels/dense_bf16_dot_avx512.cpp)
set_source_files_properties(${PROJECT_SOURCE_DIR}/lib/kernels/dense_bf16_dot_avx512.cpp
  PROPERTIES COMPILE_OPTIONS -mavx512bf16)
# Dense decode's f16 score loop on AVX-512 (dense_f16_rows.hpp).
target_sources(sparq_kernels_avx512 PRIVATE ${PROJECT_SOURCE_DIR}/lib/kernels/dense_f16_rows_avx512.cpp)
sparq_add_kernel_family(vector_ops)
list(APPEND SPARQ_SOURCES kernels/sparq_decode.cpp kernels/sparq_select.cpp)
sparq_add_kernel_family(sparq_stage1)
sparq_add_kernel_family(sparq_topk)
sparq_add_kernel_family(sparq_stage2)
