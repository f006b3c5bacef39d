// Tensor operations. Element-wise ops are grouped by arity behind an op code (the C# enums
// UnaryOp/BinaryOp mirror these numbers); everything else has its own entry point.
#include "shim.h"

#include <cmath>

// ---- element-wise ------------------------------------------------------------------------------

enum UnaryOp {
  U_NEG = 0, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_ABS, U_SIGMOID, U_TANH, U_RELU, U_SILU,
  U_GELU, U_GELU_TANH, U_SIN, U_COS, U_LOGICAL_NOT, U_FLOOR, U_CEIL, U_ROUND, U_SIGN, U_SQUARE,
  U_RECIPROCAL, U_LOG1P, U_EXPM1, U_ISNAN, U_ISINF, U_ISFINITE
};

static at::Tensor unary(int op, const at::Tensor& x) {
  switch (op) {
    case U_NEG: return at::neg(x);
    case U_EXP: return at::exp(x);
    case U_LOG: return at::log(x);
    case U_SQRT: return at::sqrt(x);
    case U_RSQRT: return at::rsqrt(x);
    case U_ABS: return at::abs(x);
    case U_SIGMOID: return at::sigmoid(x);
    case U_TANH: return at::tanh(x);
    case U_RELU: return at::relu(x);
    case U_SILU: return at::silu(x);
    case U_GELU: return at::gelu(x, "none");
    case U_GELU_TANH: return at::gelu(x, "tanh");
    case U_SIN: return at::sin(x);
    case U_COS: return at::cos(x);
    case U_LOGICAL_NOT: return at::logical_not(x);
    case U_FLOOR: return at::floor(x);
    case U_CEIL: return at::ceil(x);
    case U_ROUND: return at::round(x);
    case U_SIGN: return at::sign(x);
    case U_SQUARE: return at::square(x);
    case U_RECIPROCAL: return at::reciprocal(x);
    case U_LOG1P: return at::log1p(x);
    case U_EXPM1: return at::expm1(x);
    case U_ISNAN: return at::isnan(x);
    case U_ISINF: return at::isinf(x);
    case U_ISFINITE: return at::isfinite(x);
  }
  throw std::invalid_argument("unknown unary op code " + std::to_string(op));
}

ORL_API TH orl_unary(int op, TH x) { ORL_TRY_TENSOR(return orl::wrap(unary(op, *x));) }

enum BinaryOp {
  B_ADD = 0, B_SUB, B_MUL, B_DIV, B_POW, B_MAXIMUM, B_MINIMUM, B_EQ, B_NE, B_LT,
  B_LE, B_GT, B_GE, B_LOGICAL_AND, B_LOGICAL_OR, B_REMAINDER, B_FLOOR_DIVIDE
};

template <typename Rhs>
static at::Tensor binary(int op, const at::Tensor& a, const Rhs& b) {
  switch (op) {
    case B_ADD: return at::add(a, b);
    case B_SUB: return at::sub(a, b);
    case B_MUL: return at::mul(a, b);
    case B_DIV: return at::div(a, b);
    case B_POW: return at::pow(a, b);
    case B_EQ: return at::eq(a, b);
    case B_NE: return at::ne(a, b);
    case B_LT: return at::lt(a, b);
    case B_LE: return at::le(a, b);
    case B_GT: return at::gt(a, b);
    case B_GE: return at::ge(a, b);
    case B_REMAINDER: return at::remainder(a, b);
    case B_FLOOR_DIVIDE: return at::div(a, b, "floor");
  }
  if constexpr (std::is_same_v<Rhs, at::Tensor>) {
    switch (op) {
      case B_MAXIMUM: return at::maximum(a, b);
      case B_MINIMUM: return at::minimum(a, b);
      case B_LOGICAL_AND: return at::logical_and(a, b);
      case B_LOGICAL_OR: return at::logical_or(a, b);
    }
  } else {
    // These have no Scalar overloads in ATen; a 0-dim wrapped number keeps PyTorch's promotion rules.
    auto wrapped = at::scalar_tensor(b, at::TensorOptions().dtype(b.type()).device(a.device()));
    wrapped.unsafeGetTensorImpl()->set_wrapped_number(true);
    return binary(op, a, wrapped);
  }
  throw std::invalid_argument("unknown binary op code " + std::to_string(op));
}

ORL_API TH orl_binary(int op, TH a, TH b) { ORL_TRY_TENSOR(return orl::wrap(binary(op, *a, *b));) }

ORL_API TH orl_binary_scalar(int op, TH a, double b, int is_integral) {
  ORL_TRY_TENSOR(return orl::wrap(binary(op, *a, orl::scalar(b, is_integral)));)
}

// scalar (op) tensor, for `2 - x` and `1 / x`.
ORL_API TH orl_scalar_binary(int op, double a, int is_integral, TH b) {
  ORL_TRY_TENSOR(
      auto wrapped = at::scalar_tensor(orl::scalar(a, is_integral),
                                       at::TensorOptions().dtype(is_integral ? at::kLong : at::kDouble).device(b->device()));
      wrapped.unsafeGetTensorImpl()->set_wrapped_number(true);
      return orl::wrap(binary(op, wrapped, *b));)
}

// In-place element-wise update a (op)= b, used by optimizers and initialisation.
ORL_API int orl_binary_(int op, TH a, TH b) {
  ORL_TRY_STATUS(switch (op) {
    case B_ADD: a->add_(*b); break;
    case B_SUB: a->sub_(*b); break;
    case B_MUL: a->mul_(*b); break;
    case B_DIV: a->div_(*b); break;
    default: throw std::invalid_argument("op code " + std::to_string(op) + " has no in-place form");
  })
}

ORL_API int orl_binary_scalar_(int op, TH a, double b, int is_integral) {
  ORL_TRY_STATUS(auto s = orl::scalar(b, is_integral); switch (op) {
    case B_ADD: a->add_(s); break;
    case B_SUB: a->sub_(s); break;
    case B_MUL: a->mul_(s); break;
    case B_DIV: a->div_(s); break;
    default: throw std::invalid_argument("op code " + std::to_string(op) + " has no in-place form");
  })
}

ORL_API int orl_zero_(TH t) { ORL_TRY_STATUS(t->zero_();) }
ORL_API int orl_fill_(TH t, double value, int is_integral) { ORL_TRY_STATUS(t->fill_(orl::scalar(value, is_integral));) }
ORL_API int orl_copy_(TH dst, TH src) { ORL_TRY_STATUS(dst->copy_(*src);) }
ORL_API int orl_uniform_(TH t, double low, double high) { ORL_TRY_STATUS(t->uniform_(low, high);) }
ORL_API int orl_normal_(TH t, double mean, double std) { ORL_TRY_STATUS(t->normal_(mean, std);) }

ORL_API TH orl_clamp(TH x, int has_min, double min, int has_max, double max) {
  ORL_TRY_TENSOR(
      // Whole-number bounds on an integer tensor stay integers, so the result keeps its integer type.
      const bool integral = !at::isFloatingType(x->scalar_type());
      auto bound = [integral](double v) {
        return integral && v == std::floor(v) ? at::Scalar(static_cast<int64_t>(v)) : at::Scalar(v);
      };
      c10::optional<at::Scalar> lo = has_min ? c10::optional<at::Scalar>(bound(min)) : c10::nullopt;
      c10::optional<at::Scalar> hi = has_max ? c10::optional<at::Scalar>(bound(max)) : c10::nullopt;
      return orl::wrap(at::clamp(*x, lo, hi));)
}

ORL_API TH orl_clamp_tensor(TH x, TH min, TH max) {
  ORL_TRY_TENSOR(
      c10::optional<at::Tensor> lo = min ? c10::optional<at::Tensor>(*min) : c10::nullopt;
      c10::optional<at::Tensor> hi = max ? c10::optional<at::Tensor>(*max) : c10::nullopt;
      return orl::wrap(at::clamp(*x, lo, hi));)
}

ORL_API TH orl_where(TH condition, TH a, TH b) { ORL_TRY_TENSOR(return orl::wrap(at::where(*condition, *a, *b));) }

ORL_API TH orl_masked_fill(TH x, TH mask, double value, int is_integral) {
  ORL_TRY_TENSOR(return orl::wrap(at::masked_fill(*x, *mask, orl::scalar(value, is_integral)));)
}

// ---- reductions --------------------------------------------------------------------------------

enum ReduceOp { R_SUM = 0, R_MEAN, R_AMAX, R_AMIN, R_LOGSUMEXP, R_PROD, R_ALL, R_ANY };

// `ndims == 0` reduces over every dimension.
ORL_API TH orl_reduce(int op, TH x, const int64_t* dims, int ndims, int keepdim) {
  ORL_TRY_TENSOR(
      const bool all = ndims == 0; const bool keep = keepdim != 0; auto d = orl::dims(dims, ndims);
      std::vector<int64_t> every(static_cast<size_t>(x->dim()));
      for (size_t i = 0; i < every.size(); ++i) every[i] = static_cast<int64_t>(i);
      switch (op) {
        case R_SUM: return orl::wrap(all && !keep ? at::sum(*x) : at::sum(*x, all ? at::IntArrayRef(every) : d, keep));
        case R_MEAN: return orl::wrap(all && !keep ? at::mean(*x) : at::mean(*x, all ? at::IntArrayRef(every) : d, keep));
        case R_AMAX: return orl::wrap(at::amax(*x, all ? at::IntArrayRef(every) : d, keep));
        case R_AMIN: return orl::wrap(at::amin(*x, all ? at::IntArrayRef(every) : d, keep));
        case R_LOGSUMEXP: return orl::wrap(at::logsumexp(*x, all ? at::IntArrayRef(every) : d, keep));
        case R_PROD:
          if (all) return orl::wrap(keep ? at::prod(*x).reshape(std::vector<int64_t>(every.size(), 1)) : at::prod(*x));
          if (ndims != 1) throw std::invalid_argument("prod reduces over one dimension or all of them");
          return orl::wrap(at::prod(*x, d[0], keep));
        case R_ALL:
        case R_ANY: {
          at::Tensor r = *x;
          if (all) return orl::wrap(op == R_ALL ? at::all(r) : at::any(r));
          // Reduce the highest dimension first so the others keep their numbers; negative ones are
          // wrapped first, or a mix such as {-3, 1} would be reduced in the wrong order.
          std::vector<int64_t> sorted;
          for (int64_t dim : d) sorted.push_back(c10::maybe_wrap_dim(dim, x->dim()));
          std::sort(sorted.rbegin(), sorted.rend());
          for (int64_t dim : sorted) r = op == R_ALL ? at::all(r, dim, keep) : at::any(r, dim, keep);
          return orl::wrap(r);
        }
      }
      throw std::invalid_argument("unknown reduction op code " + std::to_string(op));)
}

ORL_API TH orl_var(TH x, const int64_t* dims, int ndims, int64_t correction, int keepdim, int take_sqrt) {
  ORL_TRY_TENSOR(
      c10::optional<at::IntArrayRef> d = ndims == 0 ? c10::nullopt : c10::optional<at::IntArrayRef>(orl::dims(dims, ndims));
      auto v = take_sqrt ? at::std(*x, d, c10::optional<int64_t>(correction), keepdim != 0)
                         : at::var(*x, d, c10::optional<int64_t>(correction), keepdim != 0);
      return orl::wrap(v);)
}

ORL_API TH orl_norm(TH x, double p, const int64_t* dims, int ndims, int keepdim) {
  ORL_TRY_TENSOR(return orl::wrap(ndims == 0 && !keepdim ? at::norm(*x, p) : at::norm(*x, p, orl::dims(dims, ndims), keepdim != 0));)
}

// Index of the largest (is_max) or smallest element along `dim`; `has_dim == 0` flattens first.
ORL_API TH orl_argextreme(TH x, int is_max, int has_dim, int64_t dim, int keepdim) {
  ORL_TRY_TENSOR(
      c10::optional<int64_t> d = has_dim ? c10::optional<int64_t>(dim) : c10::nullopt;
      return orl::wrap(is_max ? at::argmax(*x, d, keepdim != 0) : at::argmin(*x, d, keepdim != 0));)
}

ORL_API int orl_max_dim(TH x, int64_t dim, int keepdim, int is_max, TH* values, TH* indices) {
  ORL_TRY_STATUS(
      auto result = is_max ? at::max(*x, dim, keepdim != 0) : at::min(*x, dim, keepdim != 0);
      *values = orl::wrap(std::get<0>(result));
      *indices = orl::wrap(std::get<1>(result));)
}

ORL_API TH orl_softmax(TH x, int64_t dim, int log) {
  ORL_TRY_TENSOR(return orl::wrap(log ? at::log_softmax(*x, dim) : at::softmax(*x, dim));)
}

ORL_API TH orl_cumsum(TH x, int64_t dim) { ORL_TRY_TENSOR(return orl::wrap(at::cumsum(*x, dim));) }

ORL_API int orl_topk(TH x, int64_t k, int64_t dim, int largest, int sorted, TH* values, TH* indices) {
  ORL_TRY_STATUS(
      auto result = at::topk(*x, k, dim, largest != 0, sorted != 0);
      *values = orl::wrap(std::get<0>(result));
      *indices = orl::wrap(std::get<1>(result));)
}

ORL_API int orl_sort(TH x, int64_t dim, int descending, int stable, TH* values, TH* indices) {
  ORL_TRY_STATUS(
      auto result = at::sort(*x, c10::optional<bool>(stable != 0), dim, descending != 0);
      *values = orl::wrap(std::get<0>(result));
      *indices = orl::wrap(std::get<1>(result));)
}

// ---- linear algebra ----------------------------------------------------------------------------

ORL_API TH orl_matmul(TH a, TH b) { ORL_TRY_TENSOR(return orl::wrap(at::matmul(*a, *b));) }
ORL_API TH orl_bmm(TH a, TH b) { ORL_TRY_TENSOR(return orl::wrap(at::bmm(*a, *b));) }

// y = x W^T + b, as torch.nn.functional.linear; `bias` may be null.
ORL_API TH orl_linear(TH x, TH weight, TH bias) {
  ORL_TRY_TENSOR(return orl::wrap(bias ? at::linear(*x, *weight, *bias) : at::linear(*x, *weight));)
}

// ---- indexing ----------------------------------------------------------------------------------

ORL_API TH orl_embedding(TH weight, TH indices) { ORL_TRY_TENSOR(return orl::wrap(at::embedding(*weight, *indices));) }
ORL_API TH orl_index_select(TH x, int64_t dim, TH index) {
  ORL_TRY_TENSOR(return orl::wrap(at::index_select(*x, dim, *index));)
}
ORL_API TH orl_gather(TH x, int64_t dim, TH index) { ORL_TRY_TENSOR(return orl::wrap(at::gather(*x, dim, *index));) }
ORL_API TH orl_scatter(TH x, int64_t dim, TH index, TH src, int accumulate) {
  ORL_TRY_TENSOR(return orl::wrap(accumulate ? at::scatter_add(*x, dim, *index, *src) : at::scatter(*x, dim, *index, *src));)
}
ORL_API TH orl_masked_select(TH x, TH mask) { ORL_TRY_TENSOR(return orl::wrap(at::masked_select(*x, *mask));) }
ORL_API TH orl_multinomial(TH probs, int64_t samples, int replacement) {
  ORL_TRY_TENSOR(return orl::wrap(at::multinomial(*probs, samples, replacement != 0));)
}

// ---- shape -------------------------------------------------------------------------------------

ORL_API TH orl_view(TH x, const int64_t* shape, int ndim) { ORL_TRY_TENSOR(return orl::wrap(x->view(orl::dims(shape, ndim)));) }
ORL_API TH orl_reshape(TH x, const int64_t* shape, int ndim) {
  ORL_TRY_TENSOR(return orl::wrap(x->reshape(orl::dims(shape, ndim)));)
}
ORL_API TH orl_expand(TH x, const int64_t* shape, int ndim) {
  ORL_TRY_TENSOR(return orl::wrap(x->expand(orl::dims(shape, ndim)));)
}
ORL_API TH orl_permute(TH x, const int64_t* dims, int ndim) {
  ORL_TRY_TENSOR(return orl::wrap(x->permute(orl::dims(dims, ndim)));)
}
ORL_API TH orl_transpose(TH x, int64_t dim0, int64_t dim1) { ORL_TRY_TENSOR(return orl::wrap(x->transpose(dim0, dim1));) }
ORL_API TH orl_narrow(TH x, int64_t dim, int64_t start, int64_t length) {
  ORL_TRY_TENSOR(return orl::wrap(x->narrow(dim, start, length));)
}
ORL_API TH orl_slice(TH x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  ORL_TRY_TENSOR(return orl::wrap(x->slice(dim, start, end, step));)
}
ORL_API TH orl_select(TH x, int64_t dim, int64_t index) { ORL_TRY_TENSOR(return orl::wrap(x->select(dim, index));) }
ORL_API TH orl_unsqueeze(TH x, int64_t dim) { ORL_TRY_TENSOR(return orl::wrap(x->unsqueeze(dim));) }
ORL_API TH orl_squeeze(TH x, int has_dim, int64_t dim) {
  ORL_TRY_TENSOR(return orl::wrap(has_dim ? x->squeeze(dim) : x->squeeze());)
}
ORL_API TH orl_flatten(TH x, int64_t start, int64_t end) { ORL_TRY_TENSOR(return orl::wrap(x->flatten(start, end));) }
ORL_API TH orl_triangle(TH x, int64_t diagonal, int upper) {
  ORL_TRY_TENSOR(return orl::wrap(upper ? at::triu(*x, diagonal) : at::tril(*x, diagonal));)
}
ORL_API TH orl_cat(const TH* xs, int count, int64_t dim) { ORL_TRY_TENSOR(return orl::wrap(at::cat(orl::tensors(xs, count), dim));) }
ORL_API TH orl_stack(const TH* xs, int count, int64_t dim) {
  ORL_TRY_TENSOR(return orl::wrap(at::stack(orl::tensors(xs, count), dim));)
}
ORL_API TH orl_repeat(TH x, const int64_t* repeats, int ndim) {
  ORL_TRY_TENSOR(return orl::wrap(x->repeat(orl::dims(repeats, ndim)));)
}
ORL_API TH orl_flip(TH x, const int64_t* dims, int ndim) { ORL_TRY_TENSOR(return orl::wrap(at::flip(*x, orl::dims(dims, ndim)));) }

// ---- neural-network functions ------------------------------------------------------------------

ORL_API TH orl_dropout(TH x, double p, int train) { ORL_TRY_TENSOR(return orl::wrap(at::dropout(*x, p, train != 0));) }

// Reduction codes follow at::Reduction: 0 none, 1 mean, 2 sum.
ORL_API TH orl_cross_entropy(TH logits, TH target, int reduction, int64_t ignore_index, double label_smoothing) {
  ORL_TRY_TENSOR(return orl::wrap(at::cross_entropy_loss(*logits, *target, c10::nullopt, reduction, ignore_index,
                                                         label_smoothing));)
}

ORL_API TH orl_mse_loss(TH input, TH target, int reduction) {
  ORL_TRY_TENSOR(return orl::wrap(at::mse_loss(*input, *target, reduction));)
}

// ---- log-sigmoid and softplus (added for OnlineRl.Algorithms: DPO and reward-model losses) ---------

// log(sigmoid(x)), computed stably for large |x|.
ORL_API TH orl_log_sigmoid(TH x) { ORL_TRY_TENSOR(return orl::wrap(at::log_sigmoid(*x));) }

// log(1 + exp(beta * x)) / beta, linear above `threshold` (as torch.nn.functional.softplus).
ORL_API TH orl_softplus(TH x, double beta, double threshold) {
  ORL_TRY_TENSOR(return orl::wrap(at::softplus(*x, beta, threshold));)
}
