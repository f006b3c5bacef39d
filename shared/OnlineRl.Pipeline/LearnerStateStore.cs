using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using OnlineRl.Model;
using OnlineRl.Training;

namespace OnlineRl.Pipeline;

/// <summary>The pipeline's part of a learner checkpoint: what was consumed and what was published.</summary>
/// <param name="Step">Learner step the checkpoint was taken after.</param>
/// <param name="PublishedVersion">Newest weights version published (a restarted learner publishes above it).</param>
/// <param name="ScheduleStep">Position of the learning-rate schedule (the optimizer's step count).</param>
/// <param name="Trained">Prompt ids trained on, in order.</param>
/// <param name="DroppedStale">Prompt ids dropped for staleness.</param>
/// <param name="Duplicates">Redelivered groups ignored so far.</param>
/// <param name="Commit">The commit number of this checkpoint (see <see cref="LedgerEvent.Committed"/>).</param>
public sealed record LearnerProgress(long Step, long PublishedVersion, long ScheduleStep, IReadOnlyList<string> Trained,
    IReadOnlyList<string> DroppedStale, long Duplicates, long Commit);

/// <summary>
/// Crash-safe learner checkpoints in a state directory. Each checkpoint is written into a temporary
/// directory (files flushed to disk) and then renamed to <c>checkpoint-NNNNNNNNNN</c>: a rename is atomic, so a
/// directory with that name is always complete, and a kill at any moment leaves either the previous
/// checkpoint or the new one (plus a temporary directory that the next start deletes). Names carry a serial
/// number, never reused, so no complete checkpoint is ever overwritten. The newest few are kept.
/// </summary>
public sealed class LearnerStateStore
{
    private const string Prefix = "checkpoint-";
    private const string TemporaryPrefix = ".tmp-";
    private const string ProgressFile = "progress.json";
    private const string ReferenceFile = "reference.safetensors";
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private readonly int keep;

    /// <summary>Opens (creating) <paramref name="directory"/>, keeping the newest <paramref name="keep"/> checkpoints.</summary>
    public LearnerStateStore(string directory, int keep = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keep, 1);
        Directory = directory;
        this.keep = keep;
        System.IO.Directory.CreateDirectory(directory);
    }

    /// <summary>The state directory.</summary>
    public string Directory { get; }

    /// <summary>The newest complete checkpoint directory, or null when there is none.</summary>
    public string? Latest() => Checkpoints().LastOrDefault();

    /// <summary>
    /// Writes a checkpoint of <paramref name="policy"/>, <paramref name="learner"/> and <paramref name="progress"/>;
    /// returns its directory once it is durable.
    /// </summary>
    public string Save(TransformerModel policy, Learner learner, LearnerProgress progress)
    {
        var serial = Latest() is { } latest ? long.Parse(Path.GetFileName(latest)[Prefix.Length..], CultureInfo.InvariantCulture) + 1 : 1;
        var final = Path.Combine(Directory, Prefix + serial.ToString("D10", CultureInfo.InvariantCulture));
        var temporary = Path.Combine(Directory, $"{TemporaryPrefix}{progress.Step}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        LearnerCheckpoint.Save(temporary, policy, learner);
        using (var stream = new FileStream(Path.Combine(temporary, ProgressFile), FileMode.CreateNew, FileAccess.Write))
        {
            JsonSerializer.Serialize(stream, progress, Json);
            stream.Flush(flushToDisk: true);
        }
        System.IO.Directory.Move(temporary, final);
        foreach (var old in Checkpoints().SkipLast(keep)) System.IO.Directory.Delete(old, recursive: true);
        return final;
    }

    /// <summary>
    /// Loads the newest checkpoint into <paramref name="policy"/> and <paramref name="learner"/> and returns its
    /// progress, or null (touching nothing) when there is none. Leftover temporary directories are deleted.
    /// </summary>
    public LearnerProgress? Restore(TransformerModel policy, Learner learner)
    {
        foreach (var leftover in System.IO.Directory.GetDirectories(Directory, TemporaryPrefix + "*")) System.IO.Directory.Delete(leftover, recursive: true);
        if (Latest() is not { } latest) return null;
        var progressPath = Path.Combine(latest, ProgressFile);
        LearnerProgress progress;
        try
        {
            progress = JsonSerializer.Deserialize<LearnerProgress>(File.ReadAllText(progressPath), Json) ?? throw new JsonException("empty");
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new InvalidDataException($"{progressPath}: unreadable learner progress ({e.Message})", e);
        }
        LearnerCheckpoint.Load(latest, policy, learner);
        return progress;
    }

    /// <summary>
    /// The frozen reference policy, saved once per state directory so that a restarted learner computes KL terms
    /// against the same model: loads it into <paramref name="reference"/> when saved, saves it otherwise.
    /// </summary>
    public void SaveOrLoadReference(TransformerModel reference)
    {
        var path = Path.Combine(Directory, ReferenceFile);
        if (File.Exists(path))
        {
            using var file = SafeTensorsFile.Open(path);
            using var scope = TorchSharp.torch.NewDisposeScope();
            try
            {
                reference.load_state_dict(file.Tensors.Keys.ToDictionary(name => name, name => file.Load(name, reference.DType, reference.Device)));
            }
            catch (Exception e) when (e is InvalidOperationException or ExternalException)
            {
                // TorchSharp names neither the file nor, for a missing or extra tensor, the tensor.
                throw new InvalidDataException($"{path}: not the reference of this model (another architecture?): {e.Message}", e);
            }
        }
        else
        {
            SafeTensorsFile.Save(path, reference.state_dict()); // written to a temporary file and renamed: atomic
        }
    }

    private IEnumerable<string> Checkpoints() => System.IO.Directory.GetDirectories(Directory, Prefix + "*")
        .Where(d => Path.GetFileName(d).Length == Prefix.Length + 10 && Path.GetFileName(d)[Prefix.Length..].All(char.IsAsciiDigit)).Order(StringComparer.Ordinal);
}
