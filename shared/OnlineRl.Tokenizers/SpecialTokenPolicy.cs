namespace OnlineRl.Tokenizers;

/// <summary>What <see cref="PretrainedTokenizer.Encode(string, SpecialTokenPolicy)"/> does with special
/// tokens (those flagged <c>special</c>, such as <c>&lt;|im_end|&gt;</c>) written in the input text.</summary>
public enum SpecialTokenPolicy
{
    /// <summary>Special tokens in the text become their ids (the Hugging Face default).</summary>
    Allow,

    /// <summary>Special tokens in the text are encoded as ordinary text, so user-supplied text can never
    /// produce a control token. Non-special added tokens are still matched.</summary>
    EncodeAsText,

    /// <summary>A special token in the text is an error (<see cref="ArgumentException"/>).</summary>
    Reject,
}
