using OnlineRl.Contracts;
using OnlineRl.Messaging;
using OnlineRl.Weights;

namespace OnlineRl.Pipeline.Tests;

// A generator swapping weights in flight (sampling.weight_swap in_flight): a corrupt version announced while groups
// are mid-sequence is refused and sampling goes on under the held version; the next good version is swapped in
// between two decode steps, so groups in progress carry tokens of both versions, and no token names the refused one.
public class InFlightSwapTests
{
    [Theory]
    [InlineData(SamplingSection.KeepCache)]
    [InlineData(SamplingSection.RecomputeCache)]
    public async Task ACorruptVersionIsRefusedMidFlightAndTheNextGoodOneIsSwappedIntoRunningGroups(string swapCache)
    {
        var keys = TinySetup.Keys();
        keys["sampling.swap_cache"] = swapCache;
        keys["sampling.max_new_tokens"] = "40";
        keys["algorithm.prompts_per_step"] = "4";
        var config = TinySetup.Config(keys);
        Assert.Equal(SamplingSection.InFlightSwap, config.Sampling.WeightSwap);
        var tokenizer = PolicySetup.Tokenizer(config);
        using var model = PolicySetup.Create(config, tokenizer, Model.ModelHeads.None, torch.CPU);
        using var newer = PolicySetup.Create(config with { Seed = config.Seed + 1 }, tokenizer, Model.ModelHeads.None, torch.CPU);
        var blobs = new InMemoryBlobStore();
        var store = new WeightStore(blobs);
        await using var bus = new InProcessEventBus();
        var publisher = new Publisher(bus);
        using var stop = new CancellationTokenSource(TinySetup.HangLimit);

        async Task AnnounceAsync(long version) => await publisher.PublishAsync(Topics.Policy,
            new PolicyVersion { Version = version, Step = version, ManifestLocation = $"weights:v{version}" }.Stamp(config.RunId), $"policy-{version}");

        await store.PublishAsync(model.state_dict(), 1);
        var corrupt = await store.PublishAsync(newer.state_dict(), 2);
        var chunk = corrupt.Tensors[0].Chunks[0];
        var bytes = (await blobs.GetAsync(chunk))!;
        bytes[5] ^= 0x10;
        await blobs.SetAsync(chunk, bytes);
        await store.PublishAsync(newer.state_dict(), 3);

        var rollouts = bus.Subscribe(Topics.Rollouts, "test", "test");
        var worker = PipelineServices.Generator(config, bus, store, model, tokenizer, "generator-a", heldVersion: 0, ledger: null, status: null);
        var running = Task.Run(() => worker.RunAsync(stop.Token));
        await AnnounceAsync(1);
        const int prompts = 60;
        for (var i = 0; i < prompts; i++)
        {
            var prompt = new PromptMessage { PromptId = $"p{i}", Text = $"{i}+{i + 7}=" };
            prompt.TokenIds.AddRange(tokenizer.Encode(prompt.Text));
            await publisher.PublishAsync(Topics.Prompts, prompt.Stamp(config.RunId), prompt.PromptId);
        }

        var groups = new List<RolloutGroup>();
        async Task<RolloutGroup> NextAsync()
        {
            var message = await rollouts.ReceiveAsync(stop.Token);
            await rollouts.AckAsync(message, stop.Token);
            var group = MessageCodec.Default.Decode<RolloutGroup>(message.Payload.Span).Value!;
            groups.Add(group);
            return group;
        }
        await NextAsync();
        await AnnounceAsync(2);
        while (worker.RejectedVersions == 0)
        {
            Assert.False(running.IsCompleted, $"the generator stopped: {running.Exception?.GetBaseException().Message}");
            await Task.Delay(5, stop.Token);
        }
        await AnnounceAsync(3);
        while (groups.Count < prompts) await NextAsync();
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        Assert.Equal(1, worker.RejectedVersions);
        Assert.Equal(3, worker.HeldVersion);
        Assert.Equal(prompts, groups.Select(g => g.Prompt.PromptId).Distinct().Count());
        var tokenVersions = groups.SelectMany(g => g.Completions.Select(c => c.TokenPolicyVersions.Count > 0 ? c.TokenPolicyVersions.ToArray() : c.TokenIds.Select(_ => g.PolicyVersion).ToArray())).ToList();
        Assert.DoesNotContain(tokenVersions.SelectMany(v => v), v => v == 2);
        Assert.True(tokenVersions.Any(v => v.Contains(1) && v.Contains(3)), "no completion spans versions 1 and 3: " + string.Join(" | ", groups.Select(g => $"v{g.PolicyVersion}: " + string.Join(",", g.Completions.Select(c => $"{c.TokenIds.Count}[{string.Join("", c.TokenPolicyVersions)}]")))));
        Assert.Contains(groups, g => g.PolicyVersion == 3);
        foreach (var group in groups)
        {
            Assert.Null(MessageCodec.Validate(group));
            Assert.Equal(group.PolicyVersion, group.Completions.SelectMany(c => c.TokenPolicyVersions.Count > 0 ? c.TokenPolicyVersions.ToArray() : new[] { group.PolicyVersion }).Min());
        }
    }
}
