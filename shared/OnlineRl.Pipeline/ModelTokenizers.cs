using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineRl.Tokenizers;

namespace OnlineRl.Pipeline;

/// <summary>
/// Finds the tokenizer of a model directory. Hugging Face checkpoints carry tokenizer.json (or GPT-2's
/// files); small models trained here from scratch carry onlinerl_tokenizer.json naming a character or
/// byte tokenizer, written by <see cref="Save"/>.
/// </summary>
public static class ModelTokenizers
{
    private const string FileName = "onlinerl_tokenizer.json";

    /// <summary>Writes the description of a character or byte tokenizer into <paramref name="directory"/>.</summary>
    public static void Save(ITokenizer tokenizer, string directory)
    {
        JsonObject description = tokenizer switch
        {
            CharTokenizer c => new JsonObject { ["kind"] = "char", ["alphabet"] = c.Alphabet },
            ByteTokenizer => new JsonObject { ["kind"] = "byte" },
            _ => throw new ArgumentException($"{tokenizer.GetType().Name} is saved with its own files (tokenizer.json)", nameof(tokenizer)),
        };
        File.WriteAllText(Path.Combine(directory, FileName), description.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// Stores <paramref name="tokenizer"/> with the model in <paramref name="directory"/>: a description for
    /// character and byte tokenizers, otherwise a copy of its files from <paramref name="sourceDirectory"/>.
    /// </summary>
    public static void SaveWithModel(ITokenizer tokenizer, string? sourceDirectory, string directory)
    {
        if (tokenizer is CharTokenizer or ByteTokenizer)
        {
            Save(tokenizer, directory);
            return;
        }
        if (sourceDirectory is null) throw new ArgumentNullException(nameof(sourceDirectory), "a file-based tokenizer needs its source directory");
        foreach (var pattern in TokenizerLoader.FileNames.Append(FileName))
            foreach (var file in Directory.GetFiles(sourceDirectory, pattern))
                File.Copy(file, Path.Combine(directory, Path.GetFileName(file)), overwrite: true);
    }

    /// <summary>The tokenizer stored with the model in <paramref name="directory"/>.</summary>
    public static ITokenizer Load(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return TokenizerLoader.FromDirectory(directory);
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            return root["kind"]?.GetValue<string>() switch
            {
                "char" => new CharTokenizer(root["alphabet"]?.GetValue<string>() ?? throw new InvalidDataException("field 'alphabet' is missing")),
                "byte" => new ByteTokenizer(),
                var other => throw new InvalidDataException($"field 'kind': '{other}' is not char or byte"),
            };
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }
}
