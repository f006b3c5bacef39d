
namespace OnlineRl.Algorithms;

/// <summary>Argument checks shared by the losses: clear messages instead of libtorch broadcasting surprises.</summary>
internal static class Shapes
{
    internal static string Text(Tensor t) => "[" + string.Join(", ", t.shape) + "]";

    /// <summary>Throws unless <paramref name="other"/> has the shape of <paramref name="reference"/>.</summary>
    internal static void Same(Tensor reference, Tensor other, string name)
    {
        if (!reference.shape.SequenceEqual(other.shape))
            throw new ArgumentException($"{name} has shape {Text(other)}, expected {Text(reference)}", name);
    }

    /// <summary>Throws unless <paramref name="t"/> has <paramref name="dims"/> dimensions.</summary>
    internal static void Rank(Tensor t, int dims, string name)
    {
        if (t.dim() != dims)
            throw new ArgumentException($"{name} must have {dims} dimension(s), got shape {Text(t)}", name);
    }

    /// <summary>
    /// Per-sequence [B] advantages become [B, 1] (broadcast over tokens); per-token [B, T] ones stay.
    /// </summary>
    internal static Tensor PerToken(Tensor advantages, Tensor logProbs, string name)
    {
        if (advantages.dim() == 1 && advantages.size(0) == logProbs.size(0)) return advantages.unsqueeze(1);
        if (advantages.shape.SequenceEqual(logProbs.shape)) return advantages.alias();
        throw new ArgumentException($"{name} has shape {Text(advantages)}, expected [{logProbs.size(0)}] or {Text(logProbs)}", name);
    }
}
