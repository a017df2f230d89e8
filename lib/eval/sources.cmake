# Sources of lib/eval (owned by that area): decode traces, the accuracy baselines and
# the metrics behind `sparq eval`. Internal; the manifest is JSON (nlohmann_json is
# header-only: its include path, unless it is a system one, is added to these sources).
find_package(nlohmann_json 3 REQUIRED)
set(SPARQ_EVAL_SOURCES
  eval/trace.cpp
  eval/methods.cpp
  eval/equal_bytes.cpp
  eval/attention.cpp
  eval/metrics.cpp
  eval/oracle.cpp
  eval/sink_window.cpp
  eval/h2o.cpp
  eval/evaluator.cpp
  eval/synthetic_trace.cpp)
get_target_property(_sparq_json_dirs nlohmann_json::nlohmann_json INTERFACE_INCLUDE_DIRECTORIES)
if(_sparq_json_dirs)
  list(REMOVE_ITEM _sparq_json_dirs ${CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES} /usr/include)
  if(_sparq_json_dirs)
    set_source_files_properties(${SPARQ_EVAL_SOURCES} PROPERTIES INCLUDE_DIRECTORIES "${_sparq_json_dirs}")
  endif()
endif()
list(APPEND SPARQ_SOURCES ${SPARQ_EVAL_SOURCES})
