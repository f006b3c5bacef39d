using System.Text.Json;
using System.Text.Json.Serialization;
using OnlineRl.Algorithms;

namespace OnlineRl.Pipeline;

/// <summary>
/// The configuration's spellings of the algorithm choices (<c>algorithm.name: grpo</c>, <c>kl_estimator: k3</c>,
/// <c>loss_aggregation: token</c>, <c>dpo_loss: sigmoid</c>): read into the enums once, when the configuration is
/// loaded, and written back the same way; any other value is an error that lists the choices.
/// </summary>
public static class ConfigNames
{
    /// <summary>algorithm.name.</summary>
    public static readonly ConfigName<AlgorithmKind> Algorithm =
        new(("grpo", AlgorithmKind.Grpo), ("ppo", AlgorithmKind.Ppo), ("dpo", AlgorithmKind.Dpo));

    /// <summary>algorithm.kl_estimator.</summary>
    public static readonly ConfigName<KlEstimator> KlEstimator =
        new(("k1", Algorithms.KlEstimator.K1), ("k2", Algorithms.KlEstimator.K2), ("k3", Algorithms.KlEstimator.K3), ("none", Algorithms.KlEstimator.None));

    /// <summary>algorithm.loss_aggregation.</summary>
    public static readonly ConfigName<LossAggregation> LossAggregation =
        new(("token", Algorithms.LossAggregation.TokenMean), ("sequence", Algorithms.LossAggregation.SequenceMean),
            ("constant", Algorithms.LossAggregation.SumOverMaxTokens));

    /// <summary>algorithm.dpo_loss.</summary>
    public static readonly ConfigName<DpoLossType> DpoLoss = new(("sigmoid", DpoLossType.Sigmoid), ("ipo", DpoLossType.Ipo));
}

/// <summary>Reads and writes an enum as the configuration's names for its values.</summary>
/// <typeparam name="T">The enum.</typeparam>
public sealed class ConfigName<T> : JsonConverter<T> where T : struct, Enum
{
    private readonly (string Name, T Value)[] names;

    /// <summary>The names, one per value.</summary>
    public ConfigName(params (string Name, T Value)[] names) => this.names = names;

    /// <summary>The configuration's name of <paramref name="value"/>.</summary>
    public string Of(T value) => names.First(n => EqualityComparer<T>.Default.Equals(n.Value, value)).Name;

    /// <inheritdoc />
    public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        foreach (var (name, value) in names)
            if (name == text) return value;
        var choices = string.Join(", ", names[..^1].Select(n => n.Name)) + " or " + names[^1].Name;
        throw new JsonException($"'{text ?? reader.TokenType.ToString()}' is not {choices}");
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(Of(value));
}
