namespace OnlineRl.Torch;

public static partial class torch
{
    /// <summary>Neural-network building blocks.</summary>
    public static partial class nn
    {
        /// <summary>How a loss reduces its per-element values (libtorch's at::Reduction codes).</summary>
        public enum Reduction
        {
            /// <summary>One loss per element.</summary>
            None = 0,
            /// <summary>The mean over elements (ignored targets excluded).</summary>
            Mean = 1,
            /// <summary>The sum over elements.</summary>
            Sum = 2,
        }

        /// <summary>Stateless functions, as torch.nn.functional.</summary>
        public static class functional
        {
            /// <summary>y = x W^T + b (<paramref name="bias"/> optional).</summary>
            public static Tensor linear(Tensor input, Tensor weight, Tensor? bias = null)
            {
                if (bias is null) return Tensor.Wrap(Native.orl_linear(input.Handle, weight.Handle, IntPtr.Zero));
                using var handles = new HandleArray(new[] { bias });
                return Tensor.Wrap(Native.orl_linear(input.Handle, weight.Handle, handles.Pointers[0]));
            }

            /// <summary>Rows of <paramref name="weight"/> picked by integer <paramref name="indices"/>.</summary>
            public static Tensor embedding(Tensor indices, Tensor weight) => Tensor.Wrap(Native.orl_embedding(weight.Handle, indices.Handle));

            /// <summary>Zeroes elements with probability p and scales the rest by 1/(1-p) when training.</summary>
            public static Tensor dropout(Tensor input, double p = 0.5, bool training = true) =>
                Tensor.Wrap(Native.orl_dropout(input.Handle, p, training ? 1 : 0));

            /// <summary>
            /// Cross entropy between logits [N, C] (or [N, C, d...]) and class indices, with targets equal to
            /// <paramref name="ignore_index"/> skipped and optional label smoothing.
            /// </summary>
            public static Tensor cross_entropy(Tensor logits, Tensor target, Reduction reduction = Reduction.Mean,
                long ignore_index = -100, double label_smoothing = 0) =>
                Tensor.Wrap(Native.orl_cross_entropy(logits.Handle, target.Handle, (int)reduction, ignore_index, label_smoothing));

            /// <summary>Mean (or summed) squared error.</summary>
            public static Tensor mse_loss(Tensor input, Tensor target, Reduction reduction = Reduction.Mean) =>
                Tensor.Wrap(Native.orl_mse_loss(input.Handle, target.Handle, (int)reduction));

            /// <summary>softmax along <paramref name="dim"/>.</summary>
            public static Tensor softmax(Tensor input, long dim) => input.softmax(dim);

            /// <summary>log(softmax) along <paramref name="dim"/>.</summary>
            public static Tensor log_softmax(Tensor input, long dim) => input.log_softmax(dim);

            /// <summary>x * sigmoid(x).</summary>
            public static Tensor silu(Tensor input) => input.silu();

            /// <summary>GELU.</summary>
            public static Tensor gelu(Tensor input, bool tanhApproximation = false) => input.gelu(tanhApproximation);

            /// <summary>log(sigmoid(x)), computed stably for large |x| (as torch.nn.functional.logsigmoid).</summary>
            public static Tensor logsigmoid(Tensor input) => Tensor.Wrap(Native.orl_log_sigmoid(input.Handle));

            /// <summary>
            /// log(1 + exp(beta * x)) / beta, and x itself where beta * x &gt; <paramref name="threshold"/>
            /// (as torch.nn.functional.softplus).
            /// </summary>
            public static Tensor softplus(Tensor input, double beta = 1, double threshold = 20) =>
                Tensor.Wrap(Native.orl_softplus(input.Handle, beta, threshold));
        }

        /// <summary>Helpers, as torch.nn.utils.</summary>
        public static class utils
        {
            /// <summary>
            /// Scales the gradients of <paramref name="parameters"/> in place so that their joint
            /// <paramref name="norm_type"/>-norm is at most <paramref name="max_norm"/>; returns the norm before clipping.
            /// </summary>
            public static double clip_grad_norm_(IEnumerable<Tensor> parameters, double max_norm, double norm_type = 2.0)
            {
                var list = parameters.ToList();
                using var handles = new HandleArray(list);
                Native.Check(Native.orl_clip_grad_norm(handles.Pointers, list.Count, max_norm, norm_type, out var total));
                return total;
            }
        }
    }
}
