using System.Diagnostics.Metrics;

namespace OnlineRl.Pipeline;

/// <summary>
/// The pipeline's metric catalogue (Meter <see cref="MeterName"/>): what the feeder, generators, scorers and
/// learner record. Instrument names are OpenTelemetry style; the Prometheus exporter renders them with the unit
/// and, for counters, <c>_total</c> appended (e.g. <c>onlinerl.learner.step</c> in seconds becomes
/// <c>onlinerl_learner_step_seconds</c>). The table with every name, type and label is in
/// shared/OnlineRl.ServiceDefaults/README.md; the messaging counters (published, consumed, dead letters,
/// consumer lag) live in <c>OnlineRl.Messaging.MessagingMetrics</c>.
/// </summary>
public sealed class PipelineMetrics : IDisposable
{
    /// <summary>The meter name to enable in the metrics pipeline.</summary>
    public const string MeterName = "OnlineRl.Pipeline";

    /// <summary>The meters a pipeline service exports on /metrics: the pipeline's and the messaging layer's.</summary>
    public static IReadOnlyList<string> ServiceMeterNames { get; } = [MeterName, OnlineRl.Messaging.MessagingMetrics.MeterName];

    // Seconds from milliseconds (small weight sets in memory) to minutes (large checkpoints over the network).
    private static readonly double[] SecondsBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
    // Rewards are usually in [0, 1] (rule rewards). No negative bounds: with one, the OpenMetrics exposition
    // (what Prometheus asks for) must drop the histogram's _sum and _count, and the mean is lost; negative
    // rewards (e.g. a reward model's) all count in the le="0" bucket and still enter _sum.
    private static readonly double[] RewardBuckets = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1, 1.5, 2, 5];
    // Policy lag in versions: 0 is on-policy; the allowed lag is small (train.max_policy_lag).
    private static readonly long[] LagBuckets = [0, 1, 2, 3, 4, 6, 8, 16, 32];

    private readonly bool ownsMeter;
    private readonly Gauge<long> promptsInFlight;
    private readonly Counter<long> rollouts;
    private readonly Counter<long> generatedTokens;
    private readonly Gauge<double> entropy;
    private readonly Gauge<long> heldVersion;
    private readonly Histogram<double> weightsLoad;
    private readonly Counter<long> weightsRejected;
    private readonly Histogram<double> reward;
    private readonly Counter<long> learnerSteps;
    private readonly Histogram<double> stepSeconds;
    private readonly Gauge<double> rewardMean;
    private readonly Gauge<double> kl;
    private readonly Gauge<double> loss;
    private readonly Gauge<double> clipFraction;
    private readonly Gauge<double> gradNorm;
    private readonly Counter<long> staleDropped;
    private readonly Histogram<long> policyLag;
    private readonly Histogram<long> tokenPolicyLag;
    private readonly Histogram<double> weightsPublish;
    private readonly Gauge<long> publishedVersion;

    /// <summary>The process-wide instance the workers record to.</summary>
    public static PipelineMetrics Shared { get; } = new();

    /// <summary>Creates the instruments on a new meter.</summary>
    /// <param name="meterFactory">The DI meter factory, or null for a standalone meter.</param>
    public PipelineMetrics(IMeterFactory? meterFactory = null)
    {
        ownsMeter = meterFactory is null;
        Meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        promptsInFlight = Meter.CreateGauge<long>("onlinerl.feeder.prompts_in_flight", "{prompt}",
            "Prompts published and not yet retired by the learner (trained on or dropped).");
        rollouts = Meter.CreateCounter<long>("onlinerl.generator.rollouts", "{completion}",
            "Completions sampled (a rollout group holds sampling.group_size of them), per generator.");
        generatedTokens = Meter.CreateCounter<long>("onlinerl.generator.tokens", "{token}", "Tokens generated, per generator.");
        entropy = Meter.CreateGauge<double>("onlinerl.generator.entropy", "nats",
            "Mean -log p of the sampled tokens of the last batch (an estimate of the policy's per-token entropy), per generator.");
        heldVersion = Meter.CreateGauge<long>("onlinerl.generator.weights.version", "{version}", "Weights version the generator samples with.");
        weightsLoad = Meter.CreateHistogram("onlinerl.generator.weights.load", "s", "Time to fetch, verify and swap in a weights version.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        weightsRejected = Meter.CreateCounter<long>("onlinerl.generator.weights.rejected", "{version}",
            "Weights versions refused because a checksum did not verify, per generator.");
        reward = Meter.CreateHistogram("onlinerl.scorer.reward", null,
            "Reward per completion, per component (\"total\" is the sum the learner trains on).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = RewardBuckets });
        learnerSteps = Meter.CreateCounter<long>("onlinerl.learner.steps", "{step}", "Learner updates, by outcome (trained or skipped).");
        stepSeconds = Meter.CreateHistogram("onlinerl.learner.step", "s", "Wall time of one learner update.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        rewardMean = Meter.CreateGauge<double>("onlinerl.learner.reward.mean", null, "Mean reward of the last update's batch.");
        kl = Meter.CreateGauge<double>("onlinerl.learner.kl", null, "KL to the reference policy in the last update.");
        loss = Meter.CreateGauge<double>("onlinerl.learner.loss", null,
            "Loss terms of the last update (term: total, value for PPO's critic).");
        clipFraction = Meter.CreateGauge<double>("onlinerl.learner.clip_fraction", null, "Fraction of tokens whose ratio was clipped in the last update.");
        gradNorm = Meter.CreateGauge<double>("onlinerl.learner.grad_norm", null, "Gradient norm before clipping in the last update.");
        staleDropped = Meter.CreateCounter<long>("onlinerl.learner.stale_dropped", "{group}",
            "Scored groups dropped because their policy version lagged more than train.max_policy_lag.");
        policyLag = Meter.CreateHistogram("onlinerl.learner.policy_lag", "{version}",
            "Versions between the learner's policy and the policy that sampled each trained group (its oldest token).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = LagBuckets });
        tokenPolicyLag = Meter.CreateHistogram("onlinerl.learner.token_policy_lag", "{version}",
            "Versions between the learner's policy and the policy that sampled each trained completion token (with in-flight swaps a group's tokens span versions).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = LagBuckets });
        weightsPublish = Meter.CreateHistogram("onlinerl.learner.weights.publish", "s", "Time to publish one weights version.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        publishedVersion = Meter.CreateGauge<long>("onlinerl.learner.weights.version", "{version}", "Newest weights version the learner published.");
    }

    /// <summary>The meter holding the instruments.</summary>
    public Meter Meter { get; }

    /// <summary>Feeder: prompts published and not yet retired.</summary>
    /// <param name="count">Prompts in flight now.</param>
    public void PromptsInFlight(long count) => promptsInFlight.Record(count);

    /// <summary>Generator: one generation call's completions (counts, tokens and the entropy estimate).</summary>
    /// <param name="generatorId">The generator.</param>
    /// <param name="completions">What the sampler returned.</param>
    public void Generated(string generatorId, IReadOnlyList<Model.SampledCompletion> completions)
    {
        var tag = Tag("generator", generatorId);
        long tokens = completions.Sum(c => (long)c.TokenIds.Length);
        // Adding 0 makes the error counter's series exist at zero, so dashboards show 0 and rate() works before the first rejection.
        weightsRejected.Add(0, tag);
        rollouts.Add(completions.Count, tag);
        generatedTokens.Add(tokens, tag);
        if (tokens > 0) entropy.Record(-completions.Sum(c => c.LogProbs.Sum(p => (double)p)) / tokens, tag);
    }

    /// <summary>Generator: the weights version it samples with now.</summary>
    /// <param name="generatorId">The generator.</param>
    /// <param name="version">The held version.</param>
    public void HeldWeights(string generatorId, long version) => heldVersion.Record(version, Tag("generator", generatorId));

    /// <summary>Generator: a weights version fetched, verified and swapped in.</summary>
    /// <param name="elapsed">How long it took.</param>
    public void WeightsLoaded(TimeSpan elapsed) => weightsLoad.Record(elapsed.TotalSeconds);

    /// <summary>Generator: a weights version refused (checksum mismatch).</summary>
    /// <param name="generatorId">The generator.</param>
    public void WeightsRejected(string generatorId) => weightsRejected.Add(1, Tag("generator", generatorId));

    /// <summary>Scorer: the rewards of one group, in total and per component.</summary>
    /// <param name="totals">One total per completion.</param>
    /// <param name="components">Component name to one value per completion.</param>
    public void Scored(IEnumerable<float> totals, IReadOnlyDictionary<string, float[]> components)
    {
        foreach (var value in totals) reward.Record(value, Tag("component", "total"));
        foreach (var (name, values) in components)
            foreach (var value in values) reward.Record(value, Tag("component", name));
    }

    /// <summary>
    /// Learner: one update's numbers (the dictionary <c>Learner.Step</c> returns) and the policy lag of each
    /// group it used.
    /// </summary>
    /// <param name="metrics">The learner's metrics of this step (keys as in <c>LearnerStepStats.Metrics</c>).</param>
    /// <param name="skipped">True when no update was made.</param>
    /// <param name="lags">Versions between the learner and the sampling policy, one per group (its oldest token).</param>
    /// <param name="tokenLags">Trained completion tokens by their version lag (lag -> tokens).</param>
    public void LearnerStepped(IReadOnlyDictionary<string, double> metrics, bool skipped, IEnumerable<long> lags, IReadOnlyDictionary<long, long> tokenLags)
    {
        foreach (var (lag, tokens) in tokenLags)
            for (var i = 0L; i < tokens; i++) tokenPolicyLag.Record(lag);
        learnerSteps.Add(1, Tag("outcome", skipped ? "skipped" : "trained"));
        staleDropped.Add(0); // the series exists at zero before the first drop (see Generated)
        foreach (var lag in lags) policyLag.Record(lag);
        if (metrics.TryGetValue("step_seconds", out var seconds)) stepSeconds.Record(seconds);
        if (metrics.TryGetValue("reward_mean", out var meanReward)) rewardMean.Record(meanReward);
        if (metrics.TryGetValue("kl", out var klValue)) kl.Record(klValue);
        if (metrics.TryGetValue("clip_fraction", out var clipped)) clipFraction.Record(clipped);
        if (metrics.TryGetValue("grad_norm", out var norm)) gradNorm.Record(norm);
        if (metrics.TryGetValue("loss", out var total)) loss.Record(total, Tag("term", "total"));
        if (metrics.TryGetValue("value_loss", out var value)) loss.Record(value, Tag("term", "value"));
    }

    /// <summary>Learner: one scored group dropped for staleness.</summary>
    public void StaleDropped() => staleDropped.Add(1);

    /// <summary>Learner: a weights version published.</summary>
    /// <param name="version">The new version.</param>
    /// <param name="elapsed">How long publishing took.</param>
    public void WeightsPublished(long version, TimeSpan elapsed)
    {
        weightsPublish.Record(elapsed.TotalSeconds);
        publishedVersion.Record(version);
    }

    /// <summary>Disposes the meter when this instance created it.</summary>
    public void Dispose()
    {
        if (ownsMeter) Meter.Dispose();
    }

    private static KeyValuePair<string, object?> Tag(string name, string value) => new(name, value);
}
