using System.Diagnostics;
using System.Net;
using System.Text.Json;

namespace OnlineRl.TestSupport;

/// <summary>
/// A real Prometheus server (Debian's /usr/bin/prometheus) on a free loopback port, with a temporary config
/// scraping the given loopback targets and a temporary storage directory; Dispose stops it and deletes both.
/// </summary>
public sealed class PrometheusServer : IDisposable
{
    /// <summary>The Debian package's binary.</summary>
    public const string Binary = "/usr/bin/prometheus";

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly Process process;
    private readonly string directory;

    /// <summary>Why Prometheus cannot run here, or null when it can.</summary>
    public static string? MissingReason => File.Exists(Binary) ? null : $"{Binary} is missing (apt-get install -y prometheus; ./test.sh does)";

    private PrometheusServer(Process process, string directory, int port)
    {
        this.process = process;
        this.directory = directory;
        Url = $"http://127.0.0.1:{port}";
    }

    /// <summary>The server's base address.</summary>
    public string Url { get; }

    /// <summary>Starts Prometheus scraping <paramref name="targets"/> ("127.0.0.1:PORT") every <paramref name="scrapeInterval"/>.</summary>
    public static async Task<PrometheusServer> StartAsync(IEnumerable<string> targets, TimeSpan scrapeInterval, string job = "onlinerl")
    {
        var directory = Path.Combine(Path.GetTempPath(), $"onlinerl-prometheus-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        var interval = $"{(int)scrapeInterval.TotalMilliseconds}ms";
        var config = Path.Combine(directory, "prometheus.yml");
        File.WriteAllText(config, $"""
            global:
              scrape_interval: {interval}
              evaluation_interval: {interval}
            scrape_configs:
              - job_name: {job}
                static_configs:
                  - targets: [{string.Join(", ", targets.Select(t => $"'{t}'"))}]
            """);
        var port = LoopbackPort.Free();
        var info = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[]
                 {
                     $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(directory, "data")}",
                     $"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
                 })
            info.ArgumentList.Add(argument);
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start " + Binary);
        var log = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new PrometheusServer(process, directory, port);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (process.HasExited)
            {
                server.Dispose();
                lock (log) throw new InvalidOperationException($"prometheus exited with code {process.ExitCode}: {log}");
            }
            try
            {
                if ((await Http.GetAsync(server.Url + "/-/ready")).IsSuccessStatusCode) return server;
            }
            catch (HttpRequestException) { }
            if (DateTime.UtcNow > deadline)
            {
                server.Dispose();
                throw new TimeoutException("prometheus did not become ready in 30 s");
            }
            await Task.Delay(200);
        }
    }

    /// <summary>
    /// Runs an instant query (/api/v1/query) and returns the vector's samples (labels, value). Throws with
    /// Prometheus's error message when the query is rejected.
    /// </summary>
    public async Task<IReadOnlyList<(Dictionary<string, string> Labels, double Value)>> QueryAsync(string promql)
    {
        using var response = await Http.GetAsync($"{Url}/api/v1/query?query={Uri.EscapeDataString(promql)}");
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = json.RootElement;
        if (root.GetProperty("status").GetString() != "success")
            throw new InvalidOperationException($"query '{promql}' failed: {root.GetProperty("error").GetString()}");
        var data = root.GetProperty("data");
        var type = data.GetProperty("resultType").GetString();
        if (type == "scalar") return [([], ParseValue(data.GetProperty("result")[1]))];
        if (type != "vector") throw new InvalidOperationException($"query '{promql}' returned a {type}, expected an instant vector");
        return data.GetProperty("result").EnumerateArray().Select(r => (
            r.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? ""),
            ParseValue(r.GetProperty("value")[1]))).ToList();
    }

    private static double ParseValue(JsonElement value) => value.GetString() switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        var text => double.Parse(text!, System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Stops the server and deletes its config and storage.</summary>
    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        process.Dispose();
        try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
    }

}
