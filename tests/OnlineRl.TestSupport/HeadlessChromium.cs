using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineRl.TestSupport;

/// <summary>What a browser reported while loading a page.</summary>
/// <param name="Errors">Uncaught exceptions, console errors and browser log errors (blocked or failed loads, CSP violations).</param>
/// <param name="Requests">Every URL the page asked for, the page itself included.</param>
public sealed record PageLoad(IReadOnlyList<string> Errors, IReadOnlyList<string> Requests);

/// <summary>
/// A real headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools protocol: load a page, collect what
/// went wrong (exceptions, console errors, failed or blocked loads), evaluate script, take screenshots. It runs with a
/// fresh profile in a temporary folder, no sandbox (containers), no GPU and no background networking; Dispose stops
/// it and deletes the profile.
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    /// <summary>The Debian package's launcher.</summary>
    public const string Binary = "/usr/bin/chromium";

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly Process process;
    private readonly string profile;
    private readonly ClientWebSocket socket = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonNode>> pending = new();
    private readonly ConcurrentQueue<JsonNode> events = new();
    private readonly SemaphoreSlim sending = new(1, 1);
    private readonly CancellationTokenSource stop = new();
    private Task receiving = Task.CompletedTask;
    private int nextId;

    /// <summary>Why Chromium cannot run here, or null when it can.</summary>
    public static string? MissingReason => File.Exists(Binary) ? null : $"{Binary} is missing (apt-get install -y chromium; ./test.sh does)";

    private HeadlessChromium(Process process, string profile)
    {
        this.process = process;
        this.profile = profile;
    }

    /// <summary>Starts the browser and attaches to its first tab.</summary>
    public static async Task<HeadlessChromium> StartAsync()
    {
        var profile = Path.Combine(Path.GetTempPath(), $"onlinerl-chromium-{Guid.NewGuid():N}");
        Directory.CreateDirectory(profile);
        var info = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", $"--user-data-dir={profile}",
                     "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
                 })
            info.ArgumentList.Add(argument);
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start " + Binary);
        var browser = new HeadlessChromium(process, profile);
        var log = new StringBuilder();
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.AppendLine(e.Data);
            // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
            const string marker = "DevTools listening on ";
            if (e.Data.StartsWith(marker, StringComparison.Ordinal)) listening.TrySetResult(e.Data[marker.Length..].Trim());
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            var ready = await Task.WhenAny(listening.Task, process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(30)));
            if (ready != listening.Task)
                lock (log) throw new InvalidOperationException($"chromium did not open its DevTools port (exited: {process.HasExited}): {log}");
            var port = new Uri(listening.Task.Result).Port;
            // The first tab (about:blank): attach to it, not to the browser, so Page/Runtime commands apply.
            var targets = JsonNode.Parse(await Http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))!.AsArray();
            var page = targets.First(t => (string?)t!["type"] == "page")!;
            await browser.socket.ConnectAsync(new Uri((string)page["webSocketDebuggerUrl"]!), CancellationToken.None);
            browser.receiving = Task.Run(browser.ReceiveLoopAsync);
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Opens <paramref name="url"/> in a <paramref name="width"/> x <paramref name="height"/> viewport and waits for its
    /// load event plus <paramref name="settle"/> for late errors; returns the errors and requests seen.
    /// </summary>
    public async Task<PageLoad> LoadAsync(string url, int width, int height, TimeSpan? settle = null)
    {
        while (events.TryDequeue(out _)) { }
        foreach (var domain in new[] { "Runtime", "Log", "Network", "Page" }) await SendAsync(domain + ".enable");
        await SendAsync("Emulation.setDeviceMetricsOverride", new JsonObject { ["width"] = width, ["height"] = height, ["deviceScaleFactor"] = 1, ["mobile"] = false });
        var navigation = await SendAsync("Page.navigate", new JsonObject { ["url"] = url });
        if (navigation["errorText"] is { } navigationError) return new PageLoad([$"navigation failed: {navigationError}"], [url]);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!events.Any(e => (string?)e["method"] == "Page.loadEventFired"))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{url} did not finish loading in 30 s");
            await Task.Delay(50);
        }
        await Task.Delay(settle ?? TimeSpan.FromMilliseconds(500));
        var errors = new List<string>();
        var requests = new List<string>();
        foreach (var e in events)
        {
            var p = e["params"]!;
            switch ((string?)e["method"])
            {
                case "Runtime.exceptionThrown":
                    var details = p["exceptionDetails"]!;
                    errors.Add($"uncaught: {(string?)details["exception"]?["description"] ?? (string?)details["text"]}");
                    break;
                case "Runtime.consoleAPICalled" when (string?)p["type"] is "error" or "assert":
                    errors.Add("console." + (string?)p["type"] + ": " + string.Join(" ", p["args"]!.AsArray().Select(a => a?["value"]?.ToString() ?? a?["description"]?.ToString())));
                    break;
                case "Log.entryAdded" when (string?)p["entry"]!["level"] == "error":
                    errors.Add($"{(string?)p["entry"]!["source"]}: {(string?)p["entry"]!["text"]} {(string?)p["entry"]!["url"]}".TrimEnd());
                    break;
                case "Network.loadingFailed":
                    errors.Add($"load failed: {(string?)p["errorText"]} ({(string?)p["blockedReason"]})");
                    break;
                case "Network.requestWillBeSent":
                    requests.Add((string)p["request"]!["url"]!);
                    break;
            }
        }
        return new PageLoad(errors, requests);
    }

    /// <summary>Evaluates a script expression in the page and returns its value (JSON-serialisable results only).</summary>
    public async Task<JsonNode?> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true });
        if (result["exceptionDetails"] is { } error) throw new InvalidOperationException($"'{expression}' threw: {error.ToJsonString()}");
        return result["result"]!["value"];
    }

    /// <summary>A PNG screenshot of the whole page (beyond the viewport when the page is taller).</summary>
    public async Task<byte[]> ScreenshotAsync()
    {
        var result = await SendAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png", ["captureBeyondViewport"] = true });
        return Convert.FromBase64String((string)result["data"]!);
    }

    /// <summary>Sends a DevTools command and returns its result; a protocol error throws with its message.</summary>
    public async Task<JsonNode> SendAsync(string method, JsonObject? parameters = null)
    {
        var id = Interlocked.Increment(ref nextId);
        var answer = new TaskCompletionSource<JsonNode>(TaskCreationOptions.RunContinuationsAsynchronously);
        pending[id] = answer;
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() };
        await sending.WaitAsync();
        try
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        }
        finally
        {
            sending.Release();
        }
        var done = await Task.WhenAny(answer.Task, Task.Delay(TimeSpan.FromSeconds(60)));
        if (done != answer.Task) throw new TimeoutException($"chromium did not answer {method} in 60 s");
        return await answer.Task;
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[1 << 16];
        using var message = new MemoryStream();
        try
        {
            while (!stop.IsCancellationRequested && socket.State == WebSocketState.Open)
            {
                var received = await socket.ReceiveAsync(buffer, stop.Token);
                if (received.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, received.Count);
                if (!received.EndOfMessage) continue;
                var node = JsonNode.Parse(message.GetBuffer().AsSpan(0, (int)message.Length))!;
                message.SetLength(0);
                if (node["id"] is { } id && pending.TryRemove((int)id, out var answer))
                {
                    if (node["error"] is { } error) answer.TrySetException(new InvalidOperationException($"DevTools error: {error.ToJsonString()}"));
                    else answer.TrySetResult(node["result"] ?? new JsonObject());
                }
                else if (node["method"] is not null)
                {
                    events.Enqueue(node);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or JsonException)
        {
            foreach (var answer in pending.Values) answer.TrySetException(new InvalidOperationException("the DevTools connection closed", e));
        }
    }

    /// <summary>Closes the browser and deletes its profile.</summary>
    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        try { await receiving; } catch (OperationCanceledException) { }
        socket.Dispose();
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
        process.Dispose();
        stop.Dispose();
        sending.Dispose();
        try { Directory.Delete(profile, recursive: true); } catch (IOException) { }
    }
}
