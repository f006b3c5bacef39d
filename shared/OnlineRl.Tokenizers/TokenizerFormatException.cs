namespace OnlineRl.Tokenizers;

/// <summary>A tokenizer file is missing, malformed or uses a feature this library does not support. The
/// message names the file and, where it applies, the JSON field (for example <c>model.merges[12]</c>).</summary>
public sealed class TokenizerFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TokenizerFormatException(string message) : base(message) { }

    /// <summary>Creates the exception with the error that caused it.</summary>
    public TokenizerFormatException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception with a default message.</summary>
    public TokenizerFormatException() : base("Invalid tokenizer file.") { }
}
