# Script run by ctest: install into a fresh prefix, then import sparq from it and decode.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix RESULT_VARIABLE rc
                OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()
if(IS_ABSOLUTE ${PYDIR})
  message(STATUS "SPARQ_PYTHON_INSTALL_DIR is absolute (${PYDIR}): nothing to check under the prefix")
  return()
endif()
set(site ${WORK_DIR}/prefix/${PYDIR})
foreach(f __init__.py torch_ops.py _sparq.pyi py.typed)
  if(NOT EXISTS ${site}/sparq/${f})
    message(FATAL_ERROR "install is missing ${PYDIR}/sparq/${f}")
  endif()
endforeach()
set(code "import sparq, numpy as np
assert sparq.__file__.startswith('${site}/'), sparq.__file__
c = sparq.KVCache(kv_heads=1, head_dim=8, dtype='f32')
s = c.add_sequence()
c.append(s, 0, np.ones((3, 1, 8), np.float32), np.ones((3, 1, 8), np.float32))
y = sparq.decode(c, 0, sparq.Dense(), s, np.ones((2, 8), np.float32))
assert (y == 1).all()
print('imported', sparq.__file__, 'version', sparq.__version__)")
# Only the installed package on the path; LD_LIBRARY_PATH cleared so the RPATH is what finds libsparq.
execute_process(COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${site} LD_LIBRARY_PATH= ${PYTHON} -c "${code}"
                WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "importing the installed package failed:\n${out}\n${err}")
endif()
message(STATUS "${out}")
