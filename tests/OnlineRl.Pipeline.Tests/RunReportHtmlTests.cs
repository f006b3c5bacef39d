using System.Text.Json.Nodes;
using OnlineRl.TestSupport;

namespace OnlineRl.Pipeline.Tests;

/// <summary>A fact that needs Debian's Chromium; skipped with the reason where it is missing.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (HeadlessChromium.MissingReason is { } reason) Skip = reason;
    }
}

// The HTML report of a real (tiny) run, opened in a real headless Chromium: it loads without an error and without
// asking for anything but itself, and the screenshot shows every chart drawn in its colour. The screenshot is kept
// as artifacts/screenshots/run-report.png (and the page beside it) for a person to look at.
public class RunReportHtmlTests
{
    private const int ViewportWidth = 1400;

    [ChromiumFact]
    public async Task The_html_report_of_a_real_run_loads_without_errors_and_the_screenshot_shows_every_chart()
    {
        var output = TinySetup.TempDir("report");
        try
        {
            var keys = TinySetup.Keys();
            keys["output_dir"] = output;
            keys["train.steps"] = "30";
            keys["train.eval_every"] = "10";
            var summary = await InProcessRun.RunAsync(TinySetup.Config(keys), _ => { });
            var page = Path.Combine(output, "report.html");
            Assert.True(File.Exists(page), "report.html was not written beside report.md");

            await using var chromium = await HeadlessChromium.StartAsync();
            var load = await chromium.LoadAsync(new Uri(page).AbsoluteUri, ViewportWidth, 900);
            Assert.True(load.Errors.Count == 0, "the page reported errors:\n" + string.Join("\n", load.Errors));
            // Self-contained: the page itself is the only request (no script, style, font or image from anywhere).
            Assert.Equal([new Uri(page).AbsoluteUri], load.Requests);

            var charts = (await chromium.EvaluateAsync("""
                [...document.querySelectorAll('section.charts figure')].map(f => {
                  const r = f.getBoundingClientRect();
                  const line = f.querySelector('polyline');
                  return { id: f.id, x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height,
                           color: line.getAttribute('stroke'), points: line.points.numberOfItems };
                })
                """))!.AsArray();
            Assert.Equal(["chart-reward", "chart-accuracy", "chart-kl", "chart-loss", "chart-lag", "chart-throughput"], charts.Select(c => (string)c!["id"]!));
            var steps = summary.Steps.Count;
            foreach (var id in new[] { "chart-reward", "chart-kl", "chart-loss", "chart-lag", "chart-throughput" })
                Assert.Equal(steps, (int)charts.Single(c => (string)c!["id"]! == id)!["points"]!);
            // Before RL, the evaluations at steps 10, 20, 30, and the final accuracy.
            Assert.Equal(2 + summary.Steps.Count(s => s.HeldOutAccuracy is not null), (int)charts.Single(c => (string)c!["id"]! == "chart-accuracy")!["points"]!);
            var tenth = Math.Max(1, steps / 10); // the table: every tenth step and the last, under a header row
            Assert.Equal(1 + Enumerable.Range(0, steps).Count(i => i % tenth == 0 || i == steps - 1),
                (int)(await chromium.EvaluateAsync("document.querySelectorAll('table tr').length"))!);
            var configuration = (string)(await chromium.EvaluateAsync("document.getElementById('config').innerText"))!;
            Assert.Contains("run_id: tiny", configuration);
            Assert.Contains("train.eval_every: 10", configuration);

            var png = await chromium.ScreenshotAsync();
            var artifacts = RepoPaths.Of("artifacts", "screenshots");
            Directory.CreateDirectory(artifacts);
            await File.WriteAllBytesAsync(Path.Combine(artifacts, "run-report.png"), png);
            File.Copy(page, Path.Combine(artifacts, "run-report.html"), overwrite: true);

            var image = PngImage.Decode(png);
            Assert.InRange(image.Width, ViewportWidth - 20, ViewportWidth); // the viewport, less a scrollbar
            foreach (var chart in charts)
            {
                var (x, y, width, height) = ((int)(double)chart!["x"]!, (int)(double)chart["y"]!, (int)(double)chart["width"]!, (int)(double)chart["height"]!);
                Assert.True(width >= 400 && height >= 200, $"{chart["id"]} is drawn {width}x{height}");
                Assert.True(x + width <= image.Width && y + height <= image.Height, $"{chart["id"]} lies outside the screenshot");
                var pixels = PixelsOfColour(image, x, y, width, height, (string)chart["color"]!);
                // A 2-pixel line across the plot is over a thousand pixels; the dashed accuracy line with its dots a few hundred.
                Assert.True(pixels >= 300, $"{chart["id"]}: only {pixels} pixels of its line colour {chart["color"]} in the screenshot");
            }
        }
        finally
        {
            try { Directory.Delete(output, recursive: true); } catch (IOException) { }
        }
    }

    [ChromiumFact]
    public async Task The_browser_harness_catches_script_errors_and_blocked_loads_and_reads_pixels_exactly()
    {
        // The checks above must be able to fail: a page that throws, one whose policy blocks a load (like the report's
        // own policy would block a script from a CDN), and a block of known colour and size in the screenshot.
        var folder = TinySetup.TempDir("chromium-control");
        Directory.CreateDirectory(folder);
        try
        {
            var throwing = Path.Combine(folder, "throws.html");
            File.WriteAllText(throwing, """
                <!DOCTYPE html><html><body style="margin:0">
                <div style="width:100px;height:50px;background:#1f77b4"></div>
                <script>throw new Error("control failure");</script>
                </body></html>
                """);
            var blocked = Path.Combine(folder, "blocked.html");
            File.WriteAllText(blocked, """
                <!DOCTYPE html><html><head>
                <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
                </head><body><img src="http://127.0.0.1:9/chart.png"></body></html>
                """);
            await using var chromium = await HeadlessChromium.StartAsync();
            var thrown = await chromium.LoadAsync(new Uri(throwing).AbsoluteUri, 400, 300);
            Assert.Contains(thrown.Errors, e => e.Contains("control failure", StringComparison.Ordinal));
            var image = PngImage.Decode(await chromium.ScreenshotAsync());
            Assert.Equal(100 * 50, PixelsOfColour(image, 0, 0, image.Width, image.Height, "#1f77b4", tolerance: 0));
            Assert.Equal((0x1f, 0x77, 0xb4), image[99, 49]);
            Assert.Equal((255, 255, 255), image[100, 49]);

            var refused = await chromium.LoadAsync(new Uri(blocked).AbsoluteUri, 400, 300);
            Assert.Contains(refused.Errors, e => e.Contains("127.0.0.1:9", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static int PixelsOfColour(PngImage image, int left, int top, int width, int height, string hex, int tolerance = 12)
    {
        var (r, g, b) = (Convert.ToInt32(hex[1..3], 16), Convert.ToInt32(hex[3..5], 16), Convert.ToInt32(hex[5..7], 16));
        var count = 0;
        for (var y = top; y < Math.Min(image.Height, top + height); y++)
            for (var x = left; x < Math.Min(image.Width, left + width); x++)
            {
                var p = image[x, y];
                if (Math.Abs(p.R - r) <= tolerance && Math.Abs(p.G - g) <= tolerance && Math.Abs(p.B - b) <= tolerance) count++;
            }
        return count;
    }
}
