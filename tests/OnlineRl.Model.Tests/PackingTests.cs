namespace OnlineRl.Model.Tests;

// Sequence packing: examples sharing a row must not see each other.
public class PackingTests
{
    [Fact]
    public void PackedRowGivesTheSameLogitsAsSeparateSequences()
    {
        using var model = Models.Random(41);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        long[] first = { 3, 1, 4, 1, 5 }, second = { 9, 2, 6 }, third = { 5, 3, 5, 8 };
        var packed = torch.tensor(first.Concat(second).Concat(third).ToArray(), new long[] { 1, 12 });
        var segments = torch.tensor(new long[] { 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2 }, new long[] { 1, 12 });
        var positions = torch.tensor(new long[] { 0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3 }, new long[] { 1, 12 });
        var packedLogits = model.Logits(model.Hidden(packed, segmentIds: segments, segmentPositions: positions)).data<float>().ToArray();
        var separate = new[] { first, second, third }
            .SelectMany(x => model.forward(torch.tensor(x, new long[] { 1, x.Length })).data<float>().ToArray()).ToArray();
        Models.AssertClose(separate, packedLogits, 1e-5, "packed vs separate");
    }
}
