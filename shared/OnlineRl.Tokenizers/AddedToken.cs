namespace OnlineRl.Tokenizers;

/// <summary>
/// A token matched in the text before pre-tokenization and BPE (tokenizer.json <c>added_tokens</c>).
/// </summary>
/// <param name="Id">Its id.</param>
/// <param name="Content">The exact text it stands for.</param>
/// <param name="Special">A control token (BOS/EOS/chat markers): skipped by
/// <c>Decode(ids, skipSpecialTokens: true)</c> and subject to <see cref="SpecialTokenPolicy"/>.</param>
/// <param name="LStrip">The match also swallows whitespace on its left.</param>
/// <param name="RStrip">The match also swallows whitespace on its right.</param>
/// <param name="SingleWord">Matched only when not inside a word.</param>
/// <param name="Normalized">Matched in the normalized text rather than the raw text.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false,
    bool SingleWord = false, bool Normalized = false);
