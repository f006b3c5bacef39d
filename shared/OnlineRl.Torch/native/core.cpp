// Tensor lifetime, creation, queries, conversion, autograd and process-wide settings.
#include "shim.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/csrc/api/include/torch/version.h>

#include <atomic>
#include <cstring>

namespace {
thread_local std::string last_error;
}

void orl::set_error(const char* message) { last_error = message ? message : "(no message)"; }

ORL_API const char* orl_last_error() { return last_error.c_str(); }

ORL_API void orl_clear_error() { last_error.clear(); }

// ---- lifetime ----------------------------------------------------------------------------------

ORL_API void orl_free(TH t) { delete t; }

// A second handle to the same tensor (shares storage and autograd identity).
ORL_API TH orl_alias(TH t) { ORL_TRY_TENSOR(return orl::wrap(*t);) }

// ---- creation ----------------------------------------------------------------------------------

// Copies `nbytes` of host memory laid out as a contiguous tensor of `dtype` and `shape` into a new
// tensor on the requested device: exactly one copy.
ORL_API TH orl_from_buffer(const void* data, int64_t nbytes, const int64_t* shape, int ndim, int dtype,
                           int device_type, int device_index, int requires_grad) {
  ORL_TRY_TENSOR(
      auto host_options = at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype));
      auto view = at::from_blob(const_cast<void*>(data), orl::dims(shape, ndim), host_options);
      if (static_cast<int64_t>(view.nbytes()) != nbytes) {
        throw std::invalid_argument("buffer holds " + std::to_string(nbytes) + " bytes but shape and dtype need " +
                                    std::to_string(view.nbytes()));
      }
      auto target = orl::device(device_type, device_index);
      at::Tensor result = target.is_cpu() ? view.clone() : view.to(target);
      if (requires_grad) result.set_requires_grad(true);
      return orl::wrap(result);)
}

ORL_API TH orl_scalar_tensor(double value, int is_integral, int dtype, int device_type, int device_index) {
  ORL_TRY_TENSOR(return orl::wrap(at::scalar_tensor(orl::scalar(value, is_integral),
                                                     orl::options(dtype, device_type, device_index)));)
}

enum FillKind { FILL_EMPTY = 0, FILL_ZEROS = 1, FILL_ONES = 2, FILL_RAND = 3, FILL_RANDN = 4 };

ORL_API TH orl_new(int kind, const int64_t* shape, int ndim, int dtype, int device_type, int device_index,
                   int requires_grad) {
  ORL_TRY_TENSOR(
      auto size = orl::dims(shape, ndim);
      auto opts = orl::options(dtype, device_type, device_index);
      at::Tensor result;
      switch (kind) {
        case FILL_EMPTY: result = at::empty(size, opts); break;
        case FILL_ZEROS: result = at::zeros(size, opts); break;
        case FILL_ONES: result = at::ones(size, opts); break;
        case FILL_RAND: result = at::rand(size, opts); break;
        case FILL_RANDN: result = at::randn(size, opts); break;
        default: throw std::invalid_argument("unknown fill kind " + std::to_string(kind));
      }
      if (requires_grad) result.set_requires_grad(true);
      return orl::wrap(result);)
}

ORL_API TH orl_full(const int64_t* shape, int ndim, double value, int is_integral, int dtype, int device_type,
                    int device_index, int requires_grad) {
  ORL_TRY_TENSOR(
      auto result = at::full(orl::dims(shape, ndim), orl::scalar(value, is_integral), orl::options(dtype, device_type, device_index));
      if (requires_grad) result.set_requires_grad(true);
      return orl::wrap(result);)
}

ORL_API TH orl_arange(double start, double end, double step, int dtype, int device_type, int device_index) {
  ORL_TRY_TENSOR(return orl::wrap(at::arange(start, end, step, orl::options(dtype, device_type, device_index)));)
}

ORL_API TH orl_randint(int64_t low, int64_t high, const int64_t* shape, int ndim, int dtype, int device_type,
                       int device_index) {
  ORL_TRY_TENSOR(
      return orl::wrap(at::randint(low, high, orl::dims(shape, ndim), orl::options(dtype, device_type, device_index)));)
}

ORL_API TH orl_linspace(double start, double end, int64_t steps, int dtype, int device_type, int device_index) {
  ORL_TRY_TENSOR(return orl::wrap(at::linspace(start, end, steps, orl::options(dtype, device_type, device_index)));)
}

// ---- queries -----------------------------------------------------------------------------------

ORL_API int orl_dim(TH t) { return static_cast<int>(t->dim()); }

ORL_API void orl_sizes(TH t, int64_t* out) {
  auto s = t->sizes();
  std::memcpy(out, s.data(), s.size() * sizeof(int64_t));
}

ORL_API void orl_strides(TH t, int64_t* out) {
  auto s = t->strides();
  std::memcpy(out, s.data(), s.size() * sizeof(int64_t));
}

ORL_API int orl_dtype(TH t) { return static_cast<int>(t->scalar_type()); }
ORL_API int orl_device_type(TH t) { return static_cast<int>(t->device().type()); }
ORL_API int orl_device_index(TH t) { return t->device().has_index() ? t->device().index() : -1; }
ORL_API int64_t orl_numel(TH t) { return t->numel(); }
ORL_API int64_t orl_element_size(TH t) { return static_cast<int64_t>(t->element_size()); }
ORL_API int orl_is_contiguous(TH t) { return t->is_contiguous() ? 1 : 0; }
ORL_API void* orl_data_ptr(TH t) { return t->data_ptr(); }

ORL_API int orl_item(TH t, double* out) { ORL_TRY_STATUS(*out = t->item<double>();) }
ORL_API int orl_item_int64(TH t, int64_t* out) { ORL_TRY_STATUS(*out = t->item<int64_t>();) }

// Copies the tensor's elements (moved to the CPU and made contiguous if needed) into `dst`.
ORL_API int orl_copy_to_buffer(TH t, void* dst, int64_t nbytes) {
  ORL_TRY_STATUS(
      at::Tensor host = t->device().is_cpu() ? t->contiguous() : t->to(at::kCPU).contiguous();
      if (static_cast<int64_t>(host.nbytes()) != nbytes) {
        throw std::invalid_argument("destination holds " + std::to_string(nbytes) + " bytes but the tensor has " +
                                    std::to_string(host.nbytes()));
      }
      std::memcpy(dst, host.data_ptr(), static_cast<size_t>(nbytes));)
}

// ---- conversion --------------------------------------------------------------------------------

ORL_API TH orl_to(TH t, int dtype, int device_type, int device_index, int copy) {
  ORL_TRY_TENSOR(
      return orl::wrap(t->to(orl::device(device_type, device_index), static_cast<at::ScalarType>(dtype),
                             /*non_blocking=*/false, copy != 0));)
}

ORL_API TH orl_contiguous(TH t) { ORL_TRY_TENSOR(return orl::wrap(t->contiguous());) }
ORL_API TH orl_clone(TH t) { ORL_TRY_TENSOR(return orl::wrap(t->clone());) }

// ---- autograd ----------------------------------------------------------------------------------

ORL_API int orl_set_requires_grad(TH t, int value) { ORL_TRY_STATUS(t->set_requires_grad(value != 0);) }
ORL_API int orl_requires_grad(TH t) { return t->requires_grad() ? 1 : 0; }
ORL_API int orl_is_leaf(TH t) { return t->is_leaf() ? 1 : 0; }

ORL_API int orl_backward(TH t, TH gradient, int retain_graph, int create_graph) {
  ORL_TRY_STATUS(
      t->backward(gradient ? *gradient : at::Tensor(), c10::optional<bool>(retain_graph != 0), create_graph != 0);)
}

// Writes a new handle to the accumulated gradient, or nullptr when there is none yet.
ORL_API int orl_grad(TH t, TH* out) {
  ORL_TRY_STATUS(
      const at::Tensor& g = t->grad();
      *out = g.defined() ? orl::wrap(g) : nullptr;)
}

// Replaces the gradient; a null `gradient` clears it (PyTorch's zero_grad(set_to_none=True)).
ORL_API int orl_set_grad(TH t, TH gradient) {
  ORL_TRY_STATUS(t->mutable_grad() = gradient ? *gradient : at::Tensor();)
}

ORL_API TH orl_detach(TH t) { ORL_TRY_TENSOR(return orl::wrap(t->detach());) }

ORL_API int orl_grad_enabled() { return c10::GradMode::is_enabled() ? 1 : 0; }
ORL_API void orl_set_grad_enabled(int enabled) { c10::GradMode::set_enabled(enabled != 0); }

// ---- random generators -------------------------------------------------------------------------

// A private generator (a clone of the device's default one, reseeded), so that concurrent samplers do not
// share, and disturb, one global random stream.
ORL_API void* orl_generator_new(uint64_t seed, int device_type, int device_index) {
  try {
    auto gen = at::globalContext().defaultGenerator(orl::device(device_type, device_index)).clone();
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(seed);
    }
    return new at::Generator(std::move(gen));
  } catch (const c10::Error& e) {
    orl::set_error(e.what_without_backtrace());
  } catch (const std::exception& e) {
    orl::set_error(e.what());
  }
  return nullptr;
}

ORL_API void orl_generator_free(void* gen) { delete static_cast<at::Generator*>(gen); }

// The state of `gen`, or of the default CPU generator when `gen` is null (torch.get_rng_state), as a
// uint8 tensor; checkpoints save it so that a restarted run draws the same numbers.
ORL_API TH orl_generator_get_state(void* gen) {
  ORL_TRY_TENSOR(
      at::Generator g = gen ? *static_cast<at::Generator*>(gen) : at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(g.mutex());
      return orl::wrap(g.get_state());)
}

// Restores a state read by orl_generator_get_state (null `gen`: the default CPU generator).
ORL_API int orl_generator_set_state(void* gen, TH state) {
  ORL_TRY_STATUS(
      at::Generator g = gen ? *static_cast<at::Generator*>(gen) : at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(g.mutex());
      g.set_state(*state);)
}

ORL_API TH orl_randperm_gen(int64_t n, void* gen) {
  ORL_TRY_TENSOR(return orl::wrap(at::randperm(n, *static_cast<at::Generator*>(gen), at::TensorOptions().dtype(at::kLong)));)
}

ORL_API TH orl_multinomial_gen(TH probs, int64_t samples, int replacement, void* gen) {
  ORL_TRY_TENSOR(return orl::wrap(at::multinomial(*probs, samples, replacement != 0, *static_cast<at::Generator*>(gen)));)
}

// ---- process-wide settings ---------------------------------------------------------------------

ORL_API void orl_set_num_threads(int n) { at::set_num_threads(n); }
ORL_API int orl_get_num_threads() { return at::get_num_threads(); }
ORL_API int orl_manual_seed(uint64_t seed) { ORL_TRY_STATUS(at::manual_seed(seed);) }
ORL_API int orl_set_deterministic(int enabled) {
  ORL_TRY_STATUS(at::globalContext().setDeterministicAlgorithms(enabled != 0, /*warn_only=*/false);)
}
ORL_API int orl_cuda_is_available() { return at::hasCUDA() ? 1 : 0; }
ORL_API int orl_cuda_device_count() { return static_cast<int>(at::getNumGPUs()); }
ORL_API const char* orl_torch_version() { return TORCH_VERSION; }
