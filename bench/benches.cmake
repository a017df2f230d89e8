# Benchmarks (one executable per kernel family), registered with sparq_add_bench.
sparq_add_bench(dense_decode_bench dense_decode_bench.cpp)
sparq_add_bench(sparq_decode_bench sparq_decode_bench.cpp)
