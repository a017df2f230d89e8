# Warnings for our own targets only (not for consumers of the installed package).
function(sparq_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-psabi)
  # GCC 12 reports -Wrestrict false positives inside libstdc++'s std::string operator+
  # at -O2 and above (GCC bug 105329); they point at no code of ours.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
endfunction()
