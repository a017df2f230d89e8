# Runs the C++ and the Python serving loop and requires the same output, checksum included.
execute_process(COMMAND ${CPP} RESULT_VARIABLE rc OUTPUT_VARIABLE cpp ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "serving_loop failed (${rc}): ${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${PYTHONPATH} PYTHONDONTWRITEBYTECODE=1 ${PYTHON} ${SCRIPT}
                RESULT_VARIABLE rc OUTPUT_VARIABLE py ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "serving_loop.py failed (${rc}): ${err}")
endif()
if(NOT cpp STREQUAL py)
  message(FATAL_ERROR "the loops differ:\nC++:\n${cpp}\nPython:\n${py}")
endif()
message(STATUS "both loops printed:\n${py}")
