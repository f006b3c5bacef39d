using System.Globalization;
using System.Text.Json.Nodes;
using OnlineRl.TestSupport;

namespace OnlineRl.Pipeline.Tests;

// The learner's TensorBoard events read back by an independent reader (peers/tfevents_reader.py, run by Debian's
// /usr/bin/python3: its own CRC-32C and a hand-written protobuf decoder, nothing shared with TensorBoardWriter), value
// for value against metrics.csv. The same reader must refuse a corrupted checksum and a value that differs.
public class TensorBoardTests
{
    private static readonly string Reader = RepoPaths.Of("tests", "OnlineRl.Pipeline.Tests", "peers", "tfevents_reader.py");

    [Fact]
    public async Task The_event_files_of_a_run_give_the_same_values_as_metrics_csv()
    {
        var output = TinySetup.TempDir("tensorboard");
        try
        {
            var keys = TinySetup.Keys();
            keys["output_dir"] = output;
            keys["train.steps"] = "4";
            keys["train.eval_every"] = "2";
            var summary = await InProcessRun.RunAsync(TinySetup.Config(keys), _ => { });

            var read = Read(output);
            Assert.True(read.Code == 0, "the reader refused the run's event files:\n" + read.Output);
            var result = JsonNode.Parse(read.Output)!.AsObject();
            // Every non-empty cell of metrics.csv but the step, counted here from the file itself.
            var lines = File.ReadAllLines(Path.Combine(output, "metrics.csv"));
            var cells = lines.Skip(1).Sum(line => line.Split(',').Skip(1).Count(cell => cell.Length > 0));
            Assert.Equal(5, lines.Length);
            Assert.Equal(cells, (int)result["compared"]!);
            Assert.True(cells >= 4 * 20, $"only {cells} values in metrics.csv");
            Assert.Equal(["brain.Event:2"], result["file_versions"]!.AsArray().Select(v => (string)v!));
            Assert.True((bool)result["wall_times_ok"]!, "wall times are not Unix seconds of today");

            // Beyond metrics.csv: the accuracy before RL at step 0 and after it at the last step, as the summary has them.
            var unmatched = result["unmatched"]!.AsArray();
            Assert.Equal(cells + unmatched.Count, (int)result["events"]!);
            Assert.Equal(["eval/heldout_accuracy@0", "eval/heldout_accuracy_final@4"], unmatched.Select(u => $"{u!["tag"]}@{u["step"]}"));
            Assert.Equal((float)summary.InitialAccuracy, (float)(double)unmatched[0]!["value"]!);
            Assert.Equal((float)summary.FinalAccuracy, (float)(double)unmatched[1]!["value"]!);

            // The curves a person looks for, under the tags the README names.
            var tags = result["tags"]!.AsArray().Select(t => (string)t!).ToList();
            foreach (var tag in new[]
            {
                "reward/reward_mean", "eval/heldout_accuracy", "loss/loss", "policy/kl", "policy/clip_fraction", "optim/grad_norm",
                "optim/learning_rate", "async/policy_lag", "perf/tokens_per_second",
            })
                Assert.Contains(tag, tags);

            // The reader can fail: a flipped bit in one record's data checksum, then in a value itself (the checksum no
            // longer fits), and a metrics.csv value changed in its last printed digit.
            var events = Directory.GetFiles(output, "events.out.tfevents.*").Single();
            var original = File.ReadAllBytes(events);
            var corrupted = (byte[])original.Clone();
            corrupted[^1] ^= 0x01;
            File.WriteAllBytes(events, corrupted);
            Assert.Contains("data CRC mismatch", Refused(output));
            corrupted = (byte[])original.Clone();
            corrupted[^5] ^= 0x01; // the last byte of the last record's data: the float's highest byte
            File.WriteAllBytes(events, corrupted);
            Assert.Contains("data CRC mismatch", Refused(output));
            File.WriteAllBytes(events, original);
            Assert.Equal(0, Read(output).Code);

            var csv = Path.Combine(output, "metrics.csv");
            var header = lines[0].Split(',');
            var row = lines[2].Split(',');
            var column = Array.IndexOf(header, "reward_mean");
            row[column] = NextInLastDigit(row[column]);
            File.WriteAllLines(csv, lines.Take(2).Append(string.Join(',', row)).Concat(lines.Skip(3)));
            Assert.Contains($"reward/reward_mean at step {row[0]}", Refused(output));
        }
        finally
        {
            try { Directory.Delete(output, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public void The_reader_reads_TorchSharps_own_SummaryWriter_and_shows_why_it_is_not_used()
    {
        // A second, third-party writer of the format: the reader gets its values back, which checks the reader itself.
        // Its file-version event carries .NET ticks as the wall time (TensorBoardWriter's remarks): if a TorchSharp
        // update fixes that, its writer could replace ours.
        var folder = TinySetup.TempDir("torchsharp-tensorboard");
        try
        {
            var writer = torch.utils.tensorboard.SummaryWriter(folder);
            writer.add_scalar("reward/reward_mean", 0.625f, 1);
            writer.add_scalar("loss/loss", -0.0123f, 1);
            writer.add_scalar("reward/reward_mean", 0.75f, 2);
            File.WriteAllText(Path.Combine(folder, "metrics.csv"), "step,reward_mean,loss\n1,0.625,-0.0123\n2,0.75,\n");

            var read = Read(folder);
            Assert.True(read.Code == 0, "the reader refused TorchSharp's event file:\n" + read.Output);
            var result = JsonNode.Parse(read.Output)!.AsObject();
            Assert.Equal(3, (int)result["compared"]!);
            Assert.Empty(result["unmatched"]!.AsArray());
            Assert.False((bool)result["wall_times_ok"]!, "TorchSharp's SummaryWriter now writes Unix-second wall times: reconsider it");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_new_run_replaces_the_event_files_of_the_previous_run_and_a_resuming_learner_keeps_them()
    {
        var folder = TinySetup.TempDir("tensorboard-files");
        try
        {
            var config = TinySetup.Config(new Dictionary<string, string> { ["output_dir"] = folder });
            string[] Files() => Directory.GetFiles(folder, "events.out.tfevents.*").Order(StringComparer.Ordinal).ToArray();
            string first, second;
            using (var log = TensorBoardLog.Open(config)!) first = log.FilePath;
            using (var log = TensorBoardLog.Open(config, resuming: true)!) second = log.FilePath;
            Assert.Equal(new[] { first, second }.Order(StringComparer.Ordinal), Files());
            using (var log = TensorBoardLog.Open(config)!) Assert.Equal([log.FilePath], Files());
            Assert.Null(TensorBoardLog.Open(config with { Tensorboard = false }));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static (int Code, string Output) Read(string runDirectory)
    {
        var (code, stdout, stderr) = PythonProcess.RunSeparated([Reader, runDirectory], TimeSpan.FromMinutes(1));
        return (code, code == 0 ? stdout : stdout + stderr);
    }

    private static string Refused(string runDirectory)
    {
        var (code, output) = Read(runDirectory);
        Assert.True(code == 1, $"the reader accepted a corrupted run (exit {code}):\n{output}");
        return output;
    }

    // The csv value one unit up in its last printed digit, keeping its format (e.g. 0.625 -> 0.626, 1.5e-05 -> 1.6e-05).
    private static string NextInLastDigit(string text)
    {
        var exponent = text.IndexOfAny(['e', 'E']);
        var mantissa = exponent < 0 ? text : text[..exponent];
        var decimals = mantissa.Contains('.') ? mantissa.Length - mantissa.IndexOf('.') - 1 : 0;
        var value = double.Parse(mantissa, CultureInfo.InvariantCulture) + Math.Pow(10, -decimals) * (mantissa.StartsWith('-') ? -1 : 1);
        return value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) + (exponent < 0 ? "" : text[exponent..]);
    }
}
