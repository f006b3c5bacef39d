// Optimizer kernels. The state tensors are owned by the C# optimizer so that they can be saved in
// checkpoints like any other tensor; these functions only update them in place, without autograd.
#include "shim.h"

#include <cmath>

// One AdamW step (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", Algorithm 2), in
// exactly the operation order of torch.optim.AdamW's single-tensor path so results match PyTorch:
//   p   <- p * (1 - lr * wd)
//   m   <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
//   p   <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Parameters without a gradient are skipped. `steps[i]` is parameter i's own step count t (as
// PyTorch keeps one per parameter); it is incremented here for every parameter that is updated.
ORL_API int orl_adamw_step(const TH* params, const TH* exp_avgs, const TH* exp_avg_sqs, int64_t* steps, int count,
                           double lr, double beta1, double beta2, double eps, double weight_decay) {
  ORL_TRY_STATUS(
      c10::AutoGradMode no_grad(false);
      for (int i = 0; i < count; ++i) {
        at::Tensor& param = *params[i];
        const at::Tensor& grad = param.grad();
        if (!grad.defined()) continue;
        const double step = static_cast<double>(++steps[i]);
        const double bias_correction1 = 1.0 - std::pow(beta1, step);
        const double bias_correction2 = 1.0 - std::pow(beta2, step);
        const double step_size = lr / bias_correction1;
        const double bias_correction2_sqrt = std::sqrt(bias_correction2);
        at::Tensor& exp_avg = *exp_avgs[i];
        at::Tensor& exp_avg_sq = *exp_avg_sqs[i];
        param.mul_(1.0 - lr * weight_decay);
        exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
        at::Tensor denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);
        param.addcdiv_(exp_avg, denom, -step_size);
      })
}

// Scales all gradients so that their joint p-norm is at most max_norm, as
// torch.nn.utils.clip_grad_norm_ does (same formula, same 1e-6 guard). Writes the norm before clipping.
ORL_API int orl_clip_grad_norm(const TH* params, int count, double max_norm, double norm_type, double* total_norm_out) {
  ORL_TRY_STATUS(
      c10::AutoGradMode no_grad(false);
      std::vector<at::Tensor> grads;
      for (int i = 0; i < count; ++i) {
        const at::Tensor& g = params[i]->grad();
        if (g.defined()) grads.push_back(g);
      }
      if (grads.empty()) {
        *total_norm_out = 0.0;
        return 0;
      }
      at::Tensor total;
      if (std::isinf(norm_type)) {
        std::vector<at::Tensor> maxima;
        for (auto& g : grads) maxima.push_back(g.abs().max().to(grads[0].device()));
        total = maxima.size() == 1 ? maxima[0] : at::stack(maxima).max();
      } else {
        std::vector<at::Tensor> norms;
        for (auto& g : grads) norms.push_back(at::norm(g, norm_type).to(grads[0].device()));
        total = at::norm(at::stack(norms), norm_type);
      }
      // Python evaluates `max_norm / t` as t.reciprocal() * max_norm; do the same for identical bits.
      at::Tensor clip_coef = (total + 1e-6).reciprocal() * max_norm;
      at::Tensor clip_coef_clamped = at::clamp(clip_coef, c10::nullopt, 1.0);
      for (auto& g : grads) g.mul_(clip_coef_clamped.to(g.device()));
      *total_norm_out = total.item<double>();)
}
