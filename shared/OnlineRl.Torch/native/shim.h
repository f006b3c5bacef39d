// Shared plumbing of the OnlineRl libtorch shim: the handle type, error capture and small helpers.
// Every exported function is extern "C", never lets a C++ exception escape, and reports failure by
// returning nullptr (tensor results) or -1 (status results); the message is kept per thread and read
// back by orl_last_error().
#pragma once

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cstdint>
#include <string>
#include <vector>

#define ORL_API extern "C" __attribute__((visibility("default")))

// A tensor handle is a heap-allocated at::Tensor (a reference-counted pointer to the storage).
typedef at::Tensor* TH;

namespace orl {

void set_error(const char* message);

inline TH wrap(at::Tensor t) { return new at::Tensor(std::move(t)); }

inline at::IntArrayRef dims(const int64_t* values, int count) {
  return at::IntArrayRef(values, static_cast<size_t>(count));
}

inline std::vector<at::Tensor> tensors(const TH* handles, int count) {
  std::vector<at::Tensor> out;
  out.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) out.push_back(*handles[i]);
  return out;
}

inline at::Device device(int type, int index) {
  return at::Device(static_cast<c10::DeviceType>(type), static_cast<c10::DeviceIndex>(index));
}

// ATen factories do not honour requires_grad in TensorOptions: callers set it on the result.
inline at::TensorOptions options(int dtype, int device_type, int device_index) {
  return at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype)).device(device(device_type, device_index));
}

// A C# number arrives as a double plus a flag saying whether it was an integer, so that
// `int_tensor + 2` stays integral while `int_tensor + 2.0` promotes, as in PyTorch.
inline at::Scalar scalar(double value, int is_integral) {
  return is_integral ? at::Scalar(static_cast<int64_t>(value)) : at::Scalar(value);
}

}  // namespace orl

// Runs `body` (which must `return` a TH) and turns any exception into nullptr + message.
#define ORL_TRY_TENSOR(body)                                 \
  try {                                                      \
    body                                                     \
  } catch (const c10::Error& e) {                            \
    orl::set_error(e.what_without_backtrace());              \
  } catch (const std::exception& e) {                        \
    orl::set_error(e.what());                                \
  } catch (...) {                                            \
    orl::set_error("unknown C++ exception in libtorch shim"); \
  }                                                          \
  return nullptr;

// Runs `body` and returns 0, or -1 with the message kept when it throws.
#define ORL_TRY_STATUS(body)                                 \
  try {                                                      \
    body                                                     \
    return 0;                                                \
  } catch (const c10::Error& e) {                            \
    orl::set_error(e.what_without_backtrace());              \
  } catch (const std::exception& e) {                        \
    orl::set_error(e.what());                                \
  } catch (...) {                                            \
    orl::set_error("unknown C++ exception in libtorch shim"); \
  }                                                          \
  return -1;
