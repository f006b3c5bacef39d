using F = TorchSharp.torch.nn.functional;

namespace OnlineRl.Algorithms;

/// <summary>A reward-model loss and the fraction of pairs ranked correctly.</summary>
/// <param name="Loss">The 0-dim loss, in the autograd graph of the rewards.</param>
/// <param name="Accuracy">Pairs with r(chosen) &gt; r(rejected) (ties count as wrong).</param>
public sealed record RewardModelLossResult(Tensor Loss, double Accuracy);

/// <summary>
/// Pairwise reward-model loss under the Bradley-Terry model (Bradley and Terry 1952;
/// P(y_w ≻ y_l) = σ(r(y_w) − r(y_l))), as in InstructGPT (Ouyang et al. 2022, eq. 1):
///     L = −mean log σ(r(x, y_w) − r(x, y_l)).
/// </summary>
public static class RewardModelLoss
{
    /// <summary>The Bradley-Terry loss over N pairs of scalar rewards [N] (chosen, rejected).</summary>
    public static RewardModelLossResult BradleyTerry(Tensor chosenRewards, Tensor rejectedRewards)
    {
        Shapes.Rank(chosenRewards, 1, nameof(chosenRewards));
        Shapes.Same(chosenRewards, rejectedRewards, nameof(rejectedRewards));
        using var scope = torch.NewDisposeScope();
        var margin = chosenRewards - rejectedRewards;                 // r(y_w) − r(y_l)
        var loss = -F.logsigmoid(margin).mean();                      // −mean log σ(·)
        double accuracy;
        using (torch.no_grad())
            accuracy = margin.gt(HeldScalars.Zero).to(margin.dtype).mean().ItemAsDouble();
        return new RewardModelLossResult(scope.MoveToOuter(loss), accuracy);
    }
}
