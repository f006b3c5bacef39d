namespace OnlineRl.Tokenizers;

/// <summary>
/// A text tokenizer: text to token ids and back. Implementations are immutable after construction and
/// safe to use from several threads at once.
/// </summary>
public interface ITokenizer
{
    /// <summary>Number of token ids: every id in <c>[0, VocabSize)</c> may be produced or decoded.</summary>
    int VocabSize { get; }

    /// <summary>Id of the beginning-of-sequence token, or null when the tokenizer has none.</summary>
    int? BosId { get; }

    /// <summary>Id of the end-of-sequence token, or null when the tokenizer has none.</summary>
    int? EosId { get; }

    /// <summary>Id of the padding token, or null when the tokenizer has none.</summary>
    int? PadId { get; }

    /// <summary>
    /// Encodes <paramref name="text"/> into token ids. Special tokens written in the text (for example
    /// <c>&lt;|im_end|&gt;</c>) become their ids; no BOS/EOS is added.
    /// </summary>
    int[] Encode(string text);

    /// <summary>Decodes token ids into text; special tokens are written as their text.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside <c>[0, VocabSize)</c>.</exception>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>Decodes token ids into text, leaving out special tokens when <paramref name="skipSpecialTokens"/> is set.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside <c>[0, VocabSize)</c>.</exception>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens);

    /// <summary>The id of a token given by its vocabulary string, or null when there is no such token.</summary>
    int? TokenToId(string token);

    /// <summary>The vocabulary string of a token id, or null when the id is unknown.</summary>
    string? IdToToken(int id);

    /// <summary>Whether <paramref name="id"/> is a special (control) token such as BOS, EOS or padding.</summary>
    bool IsSpecial(int id);
}
