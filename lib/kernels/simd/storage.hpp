// Storage element types of the cache as distinct C++ types, so kernels can be
// templated on them. Values are the raw 16-bit patterns (IEEE binary16 / bfloat16).
#pragma once

#include <cstdint>

#include "sparq/types.hpp"

namespace sparq::kernels {

enum class f16_t : std::uint16_t {};
enum class bf16_t : std::uint16_t {};

template <DType T>
struct storage;
template <>
struct storage<DType::f32> {
  using type = float;
};
template <>
struct storage<DType::f16> {
  using type = f16_t;
};
template <>
struct storage<DType::bf16> {
  using type = bf16_t;
};
template <DType T>
using storage_t = typename storage<T>::type;

// Calls f(T{}) with T the storage type of `dtype` (a value of it, for deduction).
template <class F>
decltype(auto) visit_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f16:
      return f(f16_t{});
    case DType::bf16:
      return f(bf16_t{});
    case DType::f32:
      break;
  }
  return f(float{});
}

}  // namespace sparq::kernels
