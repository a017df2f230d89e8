// The DESIGN §1 transfer model and the roofline placement: pure arithmetic, exact.
#include <gtest/gtest.h>

#include "sparq/error.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/tools/cold_caches.hpp"
#include "sparq/tools/roofline.hpp"

namespace sparq {
namespace {

TEST(TransferModel, DenseIsTwoRowsPerPosition) {
  EXPECT_EQ(dense_model_bytes(4096, 128, DType::bf16), 2ull * 4096 * 128 * 2);
  EXPECT_EQ(dense_model_bytes(1, 64, DType::f32), 2ull * 64 * 4);
  EXPECT_EQ(dense_model_flops(4096, 128, 4), 4ull * 4 * 4096 * 128);
}

TEST(TransferModel, SparQSharedSelection) {
  const SparQResolved p{.r = 16, .k = 256, .window = 64, .reallocation = false};
  EXPECT_EQ(sparq_model_bytes(4096, 128, DType::bf16, p, 4), 4096ull * 16 * 2 + 2ull * 256 * 128 * 2);
  SparQResolved with_mean = p;
  with_mean.reallocation = true;
  EXPECT_EQ(sparq_model_bytes(4096, 128, DType::bf16, with_mean, 1),
            4096ull * 16 * 2 + 2ull * 256 * 128 * 2 + 4ull * 128);
  // k >= S fetches every row once and needs neither stage 1 nor v̄ (α = 1): dense.
  const SparQResolved all{.r = 8, .k = 1000, .reallocation = true};
  EXPECT_EQ(sparq_model_bytes(100, 64, DType::f32, all, 1), dense_model_bytes(100, 64, DType::f32));
  EXPECT_EQ(sparq_model_flops(100, 64, all, 2), dense_model_flops(100, 64, 2));
  EXPECT_EQ(sparq_model_flops(4096, 128, p, 4), 2ull * 4 * 4096 * 16 + 4ull * 4 * 256 * 128);
}

TEST(TransferModel, PerHeadSelectionIsBoundedByTheUnion) {
  const SparQResolved p{.r = 16, .k = 256, .gqa = GqaSelection::per_head};
  // g = 4: up to 64 of 128 components and 1024 of 4096 positions.
  EXPECT_EQ(sparq_model_bytes(4096, 128, DType::bf16, p, 4), 4096ull * 64 * 2 + 2ull * 1024 * 128 * 2);
  // Capped by d and S.
  EXPECT_EQ(sparq_model_bytes(600, 128, DType::bf16, p, 16), 600ull * 128 * 2 + 2ull * 600 * 128 * 2);
}

TEST(TransferModel, Int8DMajorCopyHalvesStage1PlusScales) {
  // S = 1000, B = 256: 4 blocks (the last partial); r = 8 of d = 64, k = 100, bf16.
  const SparQResolved p{.r = 8, .k = 100, .window = 25, .reallocation = false};
  const StorageModel int8{.layouts = KeyLayout::both, .d_major_type = DMajorType::int8, .block_tokens = 256};
  const SparqModelBytes m = sparq_model_phase_bytes(1000, 64, DType::bf16, p, 1, int8);
  EXPECT_EQ(m.stage1, 1000u * 8 * 1 + 4u * 8 * 4);  // int8 rows + one f32 scale per row per block
  EXPECT_EQ(m.stage2, 2u * 100 * 64 * 2);           // stage 2 reads the exact keys: unchanged
  EXPECT_EQ(m.reallocation, 0u);
  EXPECT_EQ(sparq_model_bytes(1000, 64, DType::bf16, p, 1, int8), 8128u + 25600u);
  // The same copy: S·r·b; the default storage is that.
  EXPECT_EQ(sparq_model_phase_bytes(1000, 64, DType::bf16, p, 1, {}).stage1, 1000u * 8 * 2);
  // Per-block scales depend on B: 1000 tokens in 64-token blocks is 16 blocks.
  EXPECT_EQ(sparq_model_phase_bytes(1000, 64, DType::bf16, p, 1, {.d_major_type = DMajorType::int8, .block_tokens = 64})
                .stage1,
            8000u + 16u * 8 * 4);
  // f32: the int8 copy is a quarter of stage 1 (plus scales).
  EXPECT_EQ(sparq_model_phase_bytes(1000, 64, DType::f32, p, 1, int8).stage1, 8128u);
  // Per-head selection, g = 4: up to 32 rows, each with its scale.
  SparQResolved per_head = p;
  per_head.gqa = GqaSelection::per_head;
  EXPECT_EQ(sparq_model_phase_bytes(1000, 64, DType::bf16, per_head, 4, int8).stage1, 1000u * 32 + 4u * 32 * 4);
  // k >= S: dense, no stage 1 whatever the copy.
  EXPECT_EQ(sparq_model_bytes(100, 64, DType::bf16, {.r = 8, .k = 100}, 1, int8),
            dense_model_bytes(100, 64, DType::bf16));
}

TEST(TransferModel, FusedRowsMoveTheSameBytes) {
  // [B][key | value]: stage 2 reads one run of 2·d·b per position instead of two runs of
  // d·b; the bytes are the same (the floor's access pattern is what changes).
  const SparQResolved p{.r = 16, .k = 256, .window = 64, .reallocation = true};
  const StorageModel fused{.layouts = KeyLayout::fused};
  EXPECT_EQ(sparq_model_bytes(4096, 128, DType::bf16, p, 4, fused), sparq_model_bytes(4096, 128, DType::bf16, p, 4));
  const SparqModelBytes m = sparq_model_phase_bytes(4096, 128, DType::bf16, p, 4, fused);
  EXPECT_EQ(m.stage1, 4096u * 16 * 2);
  EXPECT_EQ(m.stage2, 256u * (2 * 128 * 2));
  EXPECT_EQ(m.reallocation, 4u * 128);
  // Fused + int8 at c = 8 (Llama-3-8B layer, S = 16k, B = 256): stage 1 halves, and the
  // total is ~10.7x fewer bytes than dense instead of 8x.
  const ModelShape llama{.layers = 1, .q_heads = 32, .kv_heads = 8, .head_dim = 128};
  const StorageModel fused_int8{.layouts = KeyLayout::fused, .d_major_type = DMajorType::int8};
  const ModelCost c = model_cost(SparQ::for_ratio(8), llama, 16384, DType::bf16, 1, fused_int8);
  EXPECT_EQ(c.bytes, 8 * (16384ull * 16 + 64ull * 16 * 4 + 2ull * 1024 * 128 * 2));
  const double ratio = double(model_cost(Dense{}, llama, 16384, DType::bf16).bytes) / double(c.bytes);
  EXPECT_NEAR(ratio, 10.6, 0.1) << "bytes=" << c.bytes;
}

TEST(TransferModel, ModelCostResolvesTheDefaults) {
  const ModelShape llama{.layers = 1, .q_heads = 32, .kv_heads = 8, .head_dim = 128};
  const ModelCost dense = model_cost(Dense{}, llama, 4096, DType::bf16);
  EXPECT_EQ(dense.bytes, 8 * dense_model_bytes(4096, 128, DType::bf16));
  // c = 8: r = 16, k = 256; GQA: reallocation off.
  const ModelCost sparq = model_cost(SparQ::for_ratio(8), llama, 4096, DType::bf16, 2);
  EXPECT_EQ(sparq.bytes, 2 * 8 * (4096ull * 16 * 2 + 2ull * 256 * 128 * 2));
  // The byte ratio at c = 8 is 8 when r/d = 1/8 and 2k/S = 1/8.
  EXPECT_DOUBLE_EQ(double(2 * dense.bytes) / double(sparq.bytes), 4.0 * 2);
  EXPECT_THROW((void)model_cost(SparQ::for_ratio(0.5), llama, 4096, DType::bf16), Error);
  EXPECT_THROW((void)model_cost(Dense{}, ModelShape{.q_heads = 6, .kv_heads = 4}, 16, DType::f32), Error);
}

// What the cold-cache harness sizes its rotations by: the K, V and d-major copy bytes a
// real cache holds for one layer (its memory_usage(), blocks' metadata aside).
TEST(ColdCaches, StoredBytesPerLayerMatchTheCache) {
  for (const KeyLayout layout : {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major, KeyLayout::fused})
    for (const DMajorType type : {DMajorType::same, DMajorType::int8})
      for (const DType dtype : {DType::bf16, DType::f32}) {
        if (type == DMajorType::int8 && !(has_s_major(layout) && has_d_major(layout))) continue;
        const CacheConfig c{.layers = 1,
                            .kv_heads = 2,
                            .head_dim = 64,
                            .dtype = dtype,
                            .block_tokens = 16,
                            .layouts = layout,
                            .d_major_type = type};
        const ColdCaches cold = build_cold_caches({.config = c, .seq_len = 37});  // 3 blocks, one partial
        const MemoryUsage m = cold.cache->memory_usage();
        EXPECT_EQ(stored_bytes_per_layer(c, 37), m.k_s_major + m.k_d_major + m.values)
            << to_string(layout) << " " << to_string(type) << " " << to_string(dtype);
      }
}

TEST(Roofline, PlacesAPointUnderTheRoofs) {
  const Ceilings c{.read_gb_per_s = 10.0, .peak_gflops = 100.0, .threads = 1};
  EXPECT_DOUBLE_EQ(c.ridge_intensity(), 10.0);
  EXPECT_DOUBLE_EQ(c.attainable_gflops(1.0), 10.0);
  EXPECT_DOUBLE_EQ(c.attainable_gflops(50.0), 100.0);

  const RooflinePoint p = roofline_point(2'000'000'000ull, 1'000'000'000ull, 0.5, c);
  EXPECT_DOUBLE_EQ(p.gb_per_s, 4.0);
  EXPECT_DOUBLE_EQ(p.gflops, 2.0);
  EXPECT_DOUBLE_EQ(p.intensity, 0.5);
  EXPECT_DOUBLE_EQ(p.bandwidth_fraction, 0.4);
  EXPECT_DOUBLE_EQ(p.attainable_gflops, 5.0);
  EXPECT_DOUBLE_EQ(p.roof_fraction, 0.4);
  EXPECT_TRUE(p.memory_bound);

  const RooflinePoint hot = roofline_point(1'000'000ull, 1'000'000'000ull, 0.1, c);
  EXPECT_FALSE(hot.memory_bound);
  EXPECT_DOUBLE_EQ(hot.roof_fraction, 0.1);
}

TEST(Roofline, FromAProfile) {
  Profile prof;
  prof[Phase::stage1] = {.bytes_read = 600, .flops = 100, .seconds = 2e-6, .calls = 2};
  prof[Phase::stage2] = {.bytes_read = 400, .flops = 300, .seconds = 2e-6, .calls = 2};
  const Ceilings c{.read_gb_per_s = 1.0, .peak_gflops = 10.0, .threads = 1};
  const RooflinePoint p = roofline_point(prof, 2, c);
  EXPECT_EQ(p.bytes, 500u);
  EXPECT_EQ(p.flops, 200u);
  EXPECT_DOUBLE_EQ(p.seconds, 2e-6);
  const RooflinePoint wall = roofline_point(prof, 2, c, 5e-6);
  EXPECT_DOUBLE_EQ(wall.seconds, 5e-6);
  EXPECT_DOUBLE_EQ(wall.gb_per_s, 0.1);
}

}  // namespace
}  // namespace sparq
