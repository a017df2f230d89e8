# Sources of lib/reference (owned by that area): the scalar reference (executable spec).
list(APPEND SPARQ_SOURCES
  reference/layer_reader.cpp
  reference/validate.cpp
  reference/topk_reference.cpp
  reference/approx_scores_reference.cpp
  reference/attention_reference.cpp
  reference/sparq_reference.cpp)
