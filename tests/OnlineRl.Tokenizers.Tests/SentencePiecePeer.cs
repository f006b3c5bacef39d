using System.Text.Json;

namespace OnlineRl.Tokenizers.Tests;

/// <summary>
/// Google's sentencepiece (Debian's python3-sentencepiece, run by /usr/bin/python3 over peers/sentencepiece_peer.py)
/// as the independent peer of <see cref="SentencePieceBpeTokenizer"/>: it trains the models the tests load (no
/// package ships a Llama 2 or Mistral tokenizer.model) and encodes/decodes whole batches. Without the module the
/// tests fail with the reason.
/// </summary>
internal static class SentencePiecePeer
{
    private const string Python = "/usr/bin/python3";

    private static string Script => Path.Combine(TestPaths.ProjectDir, "peers", "sentencepiece_peer.py");

    /// <summary>Trains a BPE model on all GSM8K texts with Llama 2's settings; returns the tokenizer.model path.</summary>
    public static string Train(string name, bool byteFallback, string userDefinedSymbols)
    {
        string dir = TestPaths.SentencePieceDir;
        Directory.CreateDirectory(dir);
        string prefix = Path.Combine(dir, name);
        Call(input => ["train", input, prefix, byteFallback ? "true" : "false", userDefinedSymbols],
            Corpus.Gsm8k.Select(t => JsonSerializer.Serialize(t)), 0);
        return prefix + ".model";
    }

    /// <summary>The peer's ids for each text.</summary>
    public static int[][] Encode(string model, IReadOnlyList<string> texts) =>
        Call(input => ["encode", model, input], texts.Select(t => JsonSerializer.Serialize(t)), texts.Count)
            .Select(line => JsonSerializer.Deserialize<int[]>(line)!).ToArray();

    /// <summary>The peer's decoding of each id sequence.</summary>
    public static string[] Decode(string model, IReadOnlyList<int[]> idLists) =>
        Call(input => ["decode", model, input], idLists.Select(ids => JsonSerializer.Serialize(ids)), idLists.Count)
            .Select(line => JsonSerializer.Deserialize<string>(line)!).ToArray();

    private static List<string> Call(Func<string, string[]> arguments, IEnumerable<string> inputLines, int expectedLines)
    {
        if (!File.Exists(Python)) throw new InvalidOperationException($"{Python} is missing; the SentencePiece peer needs Debian's python3 with python3-sentencepiece");
        return Peers.RunOverLines(Python, input => [Script, .. arguments(input)], inputLines, expectedLines,
            $"{Script} (it needs Debian's python3-sentencepiece: apt-get install -y python3-sentencepiece)");
    }
}
