using System.Text.Json;
using System.Text.RegularExpressions;

namespace OnlineRl.Deploy.Tests;

/// <summary>A fact that needs the Prometheus server binary; skipped with the reason where it is missing.</summary>
public sealed class PrometheusFactAttribute : FactAttribute
{
    public PrometheusFactAttribute()
    {
        if (PrometheusServer.MissingReason is { } reason) Skip = reason;
    }
}

/// <summary>The Grafana dashboard's PromQL expressions.</summary>
public static class Dashboard
{
    public static string Path => RepoPaths.Of("deploy", "grafana", "dashboards", "onlinerl.json");

    public static IReadOnlyList<string> Expressions()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path));
        var found = new List<string>();
        Walk(json.RootElement);
        return found;

        void Walk(JsonElement element)
        {
            if (element.ValueKind == JsonValueKind.Object)
                foreach (var property in element.EnumerateObject())
                {
                    if (property.Name == "expr") found.Add(property.Value.GetString()!);
                    else Walk(property.Value);
                }
            else if (element.ValueKind == JsonValueKind.Array)
                foreach (var item in element.EnumerateArray()) Walk(item);
        }
    }

    /// <summary>
    /// The metric names an expression reads: the services' own (onlinerl_) and the runtime, process and HTTP-server
    /// families every service exports ("up" is Prometheus's own). Label names in the dashboard never carry these prefixes.
    /// </summary>
    public static IEnumerable<string> MetricNames(string expression) =>
        Regex.Matches(expression, $@"\b{ExportedPrefix}[a-zA-Z0-9_]+").Select(m => m.Value).Distinct();

    /// <summary>A regex matching the start of every metric family the services export.</summary>
    public const string ExportedPrefix = "(?:onlinerl|dotnet|process|http_server|kestrel|aspnetcore)_";

    /// <summary>The expression with Grafana's variables replaced, ready for Prometheus.</summary>
    public static string ForPrometheus(string expression) => expression.Replace("$__rate_interval", "30s", StringComparison.Ordinal);
}

// What a running pipeline really exports, read back through /metrics and through a real Prometheus.
[Collection(EndpointCollection.Name)]
public sealed class LiveRunTests(LiveRunFixture run) : IClassFixture<LiveRunFixture>
{
    // Every scrape taken during and after the run (some series, e.g. the consumer lag, exist only while the bus does).
    private List<Dictionary<string, Family>> AllScrapes() =>
        run.ScrapesDuringRun.Append(run.MetricsText).Select(PrometheusText.Parse).ToList();

    private HashSet<string> ExportedSampleNames() =>
        AllScrapes().SelectMany(s => s.Values).SelectMany(f => f.Samples).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);

    [Fact]
    public void Every_dashboard_query_names_only_exported_metrics()
    {
        var exported = ExportedSampleNames();
        var expressions = Dashboard.Expressions();
        Assert.True(expressions.Count >= 20, $"the dashboard has only {expressions.Count} queries");
        var missing = expressions.SelectMany(e => Dashboard.MetricNames(e).Where(n => !exported.Contains(n)).Select(n => $"{n} (in: {e})")).ToList();
        Assert.True(missing.Count == 0, "not exported by the services:\n" + string.Join("\n", missing));
    }

    [Fact]
    public void The_catalogue_table_in_the_readme_is_exactly_what_is_exported()
    {
        var readme = File.ReadAllText(RepoPaths.Of("shared", "OnlineRl.ServiceDefaults", "README.md"));
        var rows = Regex.Matches(readme, $@"^\| `({Dashboard.ExportedPrefix}[a-z0-9_]+)` \| (\w+) \|[^|]*\| (.*) \|$", RegexOptions.Multiline);
        var documented = rows.ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        // Families that appear only once their event has happened (e.g. an exception) may be absent from a short run.
        var onlyAfterAnEvent = rows.Where(m => m.Groups[3].Value.StartsWith("only after", StringComparison.Ordinal)).Select(m => m.Groups[1].Value);
        var families = AllScrapes().SelectMany(s => s.Values).Where(f => Regex.IsMatch(f.Name, "^" + Dashboard.ExportedPrefix))
            .DistinctBy(f => f.Name).ToList();
        foreach (var family in families)
        {
            Assert.True(documented.TryGetValue(family.Name, out var type), $"{family.Name} is exported but not in the README's catalogue");
            Assert.Equal(type, family.Type);
            Assert.False(string.IsNullOrWhiteSpace(family.Help), $"{family.Name} has no HELP text");
        }
        var undocumentedOrAbsent = documented.Keys.Except(families.Select(f => f.Name)).Except(onlyAfterAnEvent).ToList();
        Assert.True(undocumentedOrAbsent.Count == 0, "in the README but not exported: " + string.Join(", ", undocumentedOrAbsent));
    }

    [Fact]
    public void The_runs_numbers_appear_on_metrics()
    {
        var families = PrometheusText.Parse(run.MetricsText);
        double Sum(string family, string sample, Func<Sample, bool>? where = null) =>
            families[family].Samples.Where(s => s.Name == sample && (where?.Invoke(s) ?? true)).Sum(s => s.Value);
        var steps = run.Summary.Steps.Count;
        Assert.Equal(steps, Sum("onlinerl_learner_steps_total", "onlinerl_learner_steps_total"));
        Assert.Equal(steps, Sum("onlinerl_learner_step_seconds", "onlinerl_learner_step_seconds_count"));
        Assert.Equal(run.Summary.Steps[^1].PolicyVersion, Sum("onlinerl_learner_weights_version", "onlinerl_learner_weights_version"));
        Assert.Equal(run.Summary.TrainedPrompts.Count, Sum("onlinerl_learner_policy_lag", "onlinerl_learner_policy_lag_count"));
        Assert.True(Sum("onlinerl_scorer_reward", "onlinerl_scorer_reward_count", s => s.Labels["component"] == "total") >= run.Summary.TrainedPrompts.Count * 4);
        Assert.True(Sum("onlinerl_generator_tokens_total", "onlinerl_generator_tokens_total") > 0);
        Assert.Equal(1, Sum("onlinerl_messaging_dead_letters_total", "onlinerl_messaging_dead_letters_total", s => s.Labels["reason"] == "malformed"));
        Assert.True(run.ScrapesDuringRun.Count >= 3, $"only {run.ScrapesDuringRun.Count} scrapes during the run");
        Assert.True(run.FailedScrapes.Count <= 1, $"{run.FailedScrapes.Count} of {run.FailedScrapes.Count + run.ScrapesDuringRun.Count} scrapes failed: {string.Join("; ", run.FailedScrapes)}");
        Assert.Contains(AllScrapes(), scrape => scrape.TryGetValue("onlinerl_messaging_consumer_lag", out var lag)
            && lag.Samples.Any(s => s.Labels["topic"] == "scored" && s.Labels["group"] == "learner"));
    }

    [PrometheusFact]
    public async Task A_real_prometheus_scrapes_the_running_pipeline()
    {
        var prometheus = run.Prometheus!;
        var steps = run.Summary.Steps.Count;
        // Prometheus scrapes every 0.1 s; wait until it has seen the end of the run.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await prometheus.QueryAsync("sum(onlinerl_learner_steps_total)")).FirstOrDefault().Value < steps)
        {
            Assert.True(DateTime.UtcNow < deadline, "Prometheus did not see every learner step within 30 s");
            await Task.Delay(250);
        }
        async Task<double> Scalar(string promql)
        {
            var result = await prometheus.QueryAsync(promql);
            Assert.True(result.Count == 1, $"'{promql}' returned {result.Count} series");
            return result[0].Value;
        }
        Assert.Equal(steps, await Scalar("sum(onlinerl_learner_step_seconds_count)"));
        Assert.Equal(run.Summary.Steps[^1].PolicyVersion, await Scalar("max(onlinerl_learner_weights_version)"));
        Assert.InRange(await Scalar("max(onlinerl_generator_weights_version)"), 1, run.Summary.Steps[^1].PolicyVersion);
        Assert.True(await Scalar("sum(onlinerl_generator_tokens_total)") > 0);
        Assert.Equal(run.Summary.TrainedPrompts.Count, await Scalar("sum(onlinerl_learner_policy_lag_count)"));
        var meanReward = await Scalar("sum(onlinerl_scorer_reward_sum{component=\"total\"}) / sum(onlinerl_scorer_reward_count{component=\"total\"})");
        Assert.InRange(meanReward, 0, 1); // the addition task's rule rewards are 0 or 1
        Assert.InRange(await Scalar("histogram_quantile(0.5, sum by (le) (onlinerl_learner_step_seconds_bucket))"), 0, 60);
        Assert.Equal(1, await Scalar("sum(onlinerl_messaging_dead_letters_total{reason=\"malformed\"})"));
        Assert.NotEmpty(await prometheus.QueryAsync("max_over_time(onlinerl_messaging_consumer_lag{topic=\"scored\",group=\"learner\"}[5m])"));
        // Runtime and process metrics of the service, here this test process: what Prometheus stored is this process's.
        Assert.Equal(Environment.ProcessorCount, await Scalar("max(dotnet_process_cpu_count)"));
        var resident = await Scalar("max(process_memory_usage_bytes)");
        Assert.InRange(resident, Environment.WorkingSet / 2.0, Environment.WorkingSet * 2.0);
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        Assert.InRange(await Scalar("sum(process_cpu_time_seconds_total)"), 0.1, self.TotalProcessorTime.TotalSeconds);
        var up = await prometheus.QueryAsync("up");
        Assert.All(up, target => Assert.Equal(1, target.Value));
    }

    [PrometheusFact]
    public async Task Every_dashboard_query_runs_in_prometheus_and_the_key_panels_have_data()
    {
        var prometheus = run.Prometheus!;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await prometheus.QueryAsync("sum(onlinerl_learner_steps_total)")).FirstOrDefault().Value < run.Summary.Steps.Count)
        {
            Assert.True(DateTime.UtcNow < deadline, "Prometheus did not see every learner step within 30 s");
            await Task.Delay(250);
        }
        var empty = new List<string>();
        foreach (var expression in Dashboard.Expressions())
        {
            var result = await prometheus.QueryAsync(Dashboard.ForPrometheus(expression)); // throws with Prometheus's error on bad PromQL
            if (result.Count == 0) empty.Add(expression);
        }
        // Series that exist only after an error or at a later scrape may be empty; the run's own numbers may not.
        foreach (var key in new[]
                 {
                     "onlinerl_learner_reward_mean", "onlinerl_learner_kl", "onlinerl_learner_loss", "onlinerl_learner_grad_norm", "onlinerl_generator_weights_version",
                     "process_memory_usage_bytes", "dotnet_gc_pause_time_seconds_total", "process_cpu_time_seconds_total", "process_thread_count",
                 })
        {
            var emptyPanel = empty.FirstOrDefault(e => e.Contains(key, StringComparison.Ordinal));
            Assert.True(emptyPanel is null, $"no data for: {emptyPanel}");
        }
    }
}
