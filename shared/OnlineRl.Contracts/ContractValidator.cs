using System.Globalization;

namespace OnlineRl.Contracts;

/// <summary>
/// The rules a message must satisfy beyond parsing. Each check returns the first problem as
/// "path: problem", where path is the proto field name (e.g. "rollout.completions[2].logprobs").
/// </summary>
internal static class ContractValidator
{
    public static (DecodeErrorKind Kind, string Reason)? Validate(IContractMessage message) => message switch
    {
        PromptMessage m => Check(m, ""),
        RolloutGroup m => Check(m, ""),
        ScoredGroup m => Check(m, ""),
        PolicyVersion m => Check(m, ""),
        DeadLetter m => Check(m, ""),
        _ => (DecodeErrorKind.Invalid, $"message: unsupported type {message.GetType().Name}"),
    };

    private static (DecodeErrorKind, string)? Envelope(IContractMessage m, string p)
    {
        if (m.SchemaVersion == 0)
            return (DecodeErrorKind.UnsupportedSchemaVersion, $"{p}schema_version: missing (0)");
        if (m.SchemaVersion > SchemaVersions.Current)
            return (DecodeErrorKind.UnsupportedSchemaVersion,
                $"{p}schema_version: {m.SchemaVersion} is newer than the newest supported version {SchemaVersions.Current}");
        if (m.SchemaVersion < SchemaVersions.MinSupported)
            return (DecodeErrorKind.UnsupportedSchemaVersion,
                $"{p}schema_version: {m.SchemaVersion} is older than the oldest supported version {SchemaVersions.MinSupported}");
        if (string.IsNullOrWhiteSpace(m.RunId)) return Invalid($"{p}run_id: empty");
        if (string.IsNullOrWhiteSpace(m.MessageId)) return Invalid($"{p}message_id: empty");
        if (m.CreatedAtUnixMs <= 0) return Invalid($"{p}created_at_unix_ms: {m.CreatedAtUnixMs} is not a positive Unix time");
        return null;
    }

    private static (DecodeErrorKind, string)? Check(PromptMessage m, string p)
    {
        if (Envelope(m, p) is { } e) return e;
        if (string.IsNullOrWhiteSpace(m.PromptId)) return Invalid($"{p}prompt_id: empty");
        if (m.Text.Length == 0 && m.TokenIds.Count == 0) return Invalid($"{p}text: empty and token_ids empty (no prompt)");
        if (m.MinPolicyVersion < 0) return Invalid($"{p}min_policy_version: {m.MinPolicyVersion} is negative");
        if (Tokens(m.TokenIds, $"{p}token_ids") is { } t) return t;
        if (m.DatasetIndex < 0) return Invalid($"{p}dataset_index: {m.DatasetIndex} is negative");
        foreach (var (key, _) in m.Metadata)
            if (key.Length == 0) return Invalid($"{p}metadata: empty key");
        return null;
    }

    private static (DecodeErrorKind, string)? Check(RolloutGroup m, string p)
    {
        if (Envelope(m, p) is { } e) return e;
        if (m.Prompt is null) return Invalid($"{p}prompt: missing");
        if (Check(m.Prompt, $"{p}prompt.") is { } pe) return pe;
        if (m.Completions.Count == 0) return Invalid($"{p}completions: empty");
        for (var i = 0; i < m.Completions.Count; i++)
        {
            var c = m.Completions[i];
            var cp = $"{p}completions[{i}]";
            if (c.TokenIds.Count == 0) return Invalid($"{cp}.token_ids: empty");
            if (Tokens(c.TokenIds, $"{cp}.token_ids") is { } t) return t;
            if (c.Logprobs.Count != c.TokenIds.Count)
                return Invalid($"{cp}.logprobs: {c.Logprobs.Count} values for {c.TokenIds.Count} tokens");
            if (Finite(c.Logprobs, $"{cp}.logprobs") is { } f) return f;
            if (TokenVersions(c, m.PolicyVersion, cp) is { } v) return v;
        }
        if (m.PolicyVersion < 0) return Invalid($"{p}policy_version: {m.PolicyVersion} is negative");
        if (string.IsNullOrWhiteSpace(m.GeneratorId)) return Invalid($"{p}generator_id: empty");
        if (m.Sampling is null) return Invalid($"{p}sampling: missing");
        var s = m.Sampling;
        if (!float.IsFinite(s.Temperature) || s.Temperature < 0) return Invalid($"{p}sampling.temperature: {Num(s.Temperature)} is not a finite value >= 0");
        if (s.TopK < 0) return Invalid($"{p}sampling.top_k: {s.TopK} is negative");
        if (!float.IsFinite(s.TopP) || s.TopP < 0 || s.TopP > 1) return Invalid($"{p}sampling.top_p: {Num(s.TopP)} is not in [0, 1]");
        if (s.MaxNewTokens < 0) return Invalid($"{p}sampling.max_new_tokens: {s.MaxNewTokens} is negative");
        if (m.Timings is { } tm)
        {
            if (!double.IsFinite(tm.QueueMs) || tm.QueueMs < 0) return Invalid($"{p}timings.queue_ms: {Num(tm.QueueMs)} is not a finite value >= 0");
            if (!double.IsFinite(tm.GenerateMs) || tm.GenerateMs < 0) return Invalid($"{p}timings.generate_ms: {Num(tm.GenerateMs)} is not a finite value >= 0");
        }
        return null;
    }

    private static (DecodeErrorKind, string)? Check(ScoredGroup m, string p)
    {
        if (Envelope(m, p) is { } e) return e;
        if (m.Rollout is null) return Invalid($"{p}rollout: missing");
        if (Check(m.Rollout, $"{p}rollout.") is { } re) return re;
        var n = m.Rollout.Completions.Count;
        if (m.Rewards.Count != n) return Invalid($"{p}rewards: {m.Rewards.Count} values for {n} completions");
        if (Finite(m.Rewards, $"{p}rewards") is { } f) return f;
        foreach (var (name, list) in m.RewardComponents)
        {
            if (name.Length == 0) return Invalid($"{p}reward_components: empty name");
            var values = list?.Values;
            var count = values?.Count ?? 0;
            if (count != n) return Invalid($"{p}reward_components[\"{name}\"]: {count} values for {n} completions");
            if (Finite(values!, $"{p}reward_components[\"{name}\"]") is { } cf) return cf;
        }
        if (string.IsNullOrWhiteSpace(m.ScorerId)) return Invalid($"{p}scorer_id: empty");
        if (string.IsNullOrWhiteSpace(m.ScorerVersion)) return Invalid($"{p}scorer_version: empty");
        return null;
    }

    /// <summary>Per-token versions: none, or one per token, never below the group's (oldest) version, never going back.</summary>
    private static (DecodeErrorKind, string)? TokenVersions(Completion c, long groupVersion, string cp)
    {
        var versions = c.TokenPolicyVersions;
        if (versions.Count == 0) return null;
        if (versions.Count != c.TokenIds.Count)
            return Invalid($"{cp}.token_policy_versions: {versions.Count} values for {c.TokenIds.Count} tokens");
        for (var t = 0; t < versions.Count; t++)
        {
            if (versions[t] < groupVersion)
                return Invalid($"{cp}.token_policy_versions[{t}]: {versions[t]} is below the group's policy_version {groupVersion}");
            if (t > 0 && versions[t] < versions[t - 1])
                return Invalid($"{cp}.token_policy_versions[{t}]: {versions[t]} after {versions[t - 1]} (versions only move forward)");
        }
        return null;
    }

    private static (DecodeErrorKind, string)? Check(PolicyVersion m, string p)
    {
        if (Envelope(m, p) is { } e) return e;
        if (m.Version < 0) return Invalid($"{p}version: {m.Version} is negative");
        if (m.Step < 0) return Invalid($"{p}step: {m.Step} is negative");
        if (m.RetiredPrompts < 0) return Invalid($"{p}retired_prompts: {m.RetiredPrompts} is negative");
        if (m.Weights.IsEmpty && string.IsNullOrWhiteSpace(m.ManifestLocation))
            return Invalid($"{p}manifest_location: empty and no inline weights");
        if (m.Checksum.Length == 0)
        {
            if (!m.Weights.IsEmpty) return Invalid($"{p}checksum: missing for {m.Weights.Length} bytes of inline weights");
        }
        else if (!PolicyChecksums.IsWellFormed(m.Checksum))
        {
            return Invalid($"{p}checksum: not of the form \"sha256:<64 lowercase hex digits>\"");
        }
        else if (!m.Weights.IsEmpty && PolicyChecksums.Sha256(m.Weights.Span) != m.Checksum)
        {
            return Invalid($"{p}checksum: does not match the {m.Weights.Length} bytes of inline weights");
        }
        return null;
    }

    private static (DecodeErrorKind, string)? Check(DeadLetter m, string p)
    {
        if (Envelope(m, p) is { } e) return e;
        if (string.IsNullOrWhiteSpace(m.OriginalTopic)) return Invalid($"{p}original_topic: empty");
        if (string.IsNullOrWhiteSpace(m.Reason)) return Invalid($"{p}reason: empty");
        if (m.DeliveryCount < 0) return Invalid($"{p}delivery_count: {m.DeliveryCount} is negative");
        return null;
    }

    private static (DecodeErrorKind, string)? Tokens(IReadOnlyList<int> ids, string path)
    {
        for (var i = 0; i < ids.Count; i++)
            if (ids[i] < 0) return Invalid($"{path}[{i}]: token id {ids[i]} is negative");
        return null;
    }

    private static (DecodeErrorKind, string)? Finite(IReadOnlyList<float> values, string path)
    {
        for (var i = 0; i < values.Count; i++)
            if (!float.IsFinite(values[i])) return Invalid($"{path}[{i}]: {Num(values[i])} is not finite");
        return null;
    }

    private static (DecodeErrorKind, string) Invalid(string reason) => (DecodeErrorKind.Invalid, reason);

    private static string Num(double x) => x.ToString(CultureInfo.InvariantCulture);
}
