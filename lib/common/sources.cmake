# Names, parsing and validation of the public value types.
list(APPEND SPARQ_SOURCES common/error.cpp common/types.cpp common/method.cpp common/process_topology.cpp)
