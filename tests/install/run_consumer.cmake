# Script run by ctest: install, extract README's example, build and run it.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(PREFIX ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(LAST_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX})
foreach(f lib/cmake/sparq/sparqConfig.cmake lib/cmake/sparq/sparqConfigVersion.cmake lib/pkgconfig/sparq.pc
          include/sparq/sparq.hpp include/sparq/version.hpp bin/sparq)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "install is missing ${f}")
  endif()
endforeach()
file(GLOB sonames ${PREFIX}/lib/libsparq.so.*.*.*)
if(NOT sonames)
  message(FATAL_ERROR "install has no versioned libsparq.so.N")
endif()

# The README example, between its markers, is the consumer's main.cpp.
file(READ ${SOURCE_DIR}/README.md readme)
string(REGEX MATCH "<!-- example:begin -->[^`]*```cpp\n(.*)```[^`]*<!-- example:end -->" found "${readme}")
if(NOT found)
  message(FATAL_ERROR "README.md has no example between <!-- example:begin --> and <!-- example:end -->")
endif()
set(src ${WORK_DIR}/consumer)
file(MAKE_DIRECTORY ${src})
file(WRITE ${src}/main.cpp "${CMAKE_MATCH_1}")
file(COPY ${SOURCE_DIR}/tests/install/consumer/CMakeLists.txt DESTINATION ${src})

# Once as a project that sets no C++ standard (the compiler's default, C++17 for GCC 12),
# once with C++20 set explicitly.
foreach(std "" 20)
  set(build ${WORK_DIR}/build${std})
  run(${CMAKE_COMMAND} -S ${src} -B ${build} -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_CXX_COMPILER=${CXX}
      -DCONSUMER_CXX_STANDARD=${std})
  run(${CMAKE_COMMAND} --build ${build})
  run(${build}/example)
  message(STATUS "example (CMAKE_CXX_STANDARD='${std}') printed:\n${LAST_OUTPUT}")
  if(NOT LAST_OUTPUT MATCHES "alpha")
    message(FATAL_ERROR "the example did not print its result line")
  endif()
endforeach()

# The installed core holds no tools code: no eval, trace, npy or JSON symbols, and no
# header of the tools library.
if(EXISTS ${PREFIX}/include/sparq/tools)
  message(FATAL_ERROR "the install holds include/sparq/tools/, the uninstalled tools library's headers")
endif()
run(nm -DC ${sonames})
foreach(word "sparq::eval::" "sparq::model::" "nlohmann" "trace" "npy")
  string(FIND "${LAST_OUTPUT}" "${word}" at)
  if(NOT at EQUAL -1)
    string(SUBSTRING "${LAST_OUTPUT}" ${at} 200 context)
    message(FATAL_ERROR "libsparq.so exports a symbol with '${word}' in it (the serving core must not): ${context}")
  endif()
endforeach()

# The installed CLI reports the package version.
run(${PREFIX}/bin/sparq --version)
if(NOT LAST_OUTPUT MATCHES "sparq [0-9]+\\.[0-9]+\\.[0-9]+")
  message(FATAL_ERROR "sparq --version printed: ${LAST_OUTPUT}")
endif()
