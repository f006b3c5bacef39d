using System.Text;

namespace OnlineRl.Tokenizers;

/// <summary>
/// The Qwen (ChatML) chat format, minimal: each message is <c>&lt;|im_start|&gt;{role}\n{content}&lt;|im_end|&gt;\n</c>,
/// and the generation prompt is <c>&lt;|im_start|&gt;assistant\n</c>. This equals Qwen3's template for
/// system/user/assistant turns that precede the last user turn, with no tools; with
/// <c>enableThinking: false</c> the generation prompt ends with Qwen3's empty think block
/// (<c>&lt;think&gt;\n\n&lt;/think&gt;\n\n</c>). Not reproduced: tool calls, Qwen3's reasoning-content
/// handling of assistant turns after the last user turn, and Qwen2.5's default system prompt.
/// </summary>
public static class QwenChatTemplate
{
    /// <summary>Start-of-turn marker.</summary>
    public const string ImStart = "<|im_start|>";

    /// <summary>End-of-turn marker (Qwen's EOS for chat models).</summary>
    public const string ImEnd = "<|im_end|>";

    /// <summary>Qwen3's empty reasoning block, appended to the generation prompt when thinking is disabled.</summary>
    public const string EmptyThinkBlock = "<think>\n\n</think>\n\n";

    /// <summary>Renders the conversation as text.</summary>
    /// <param name="messages">The turns, in order.</param>
    /// <param name="addGenerationPrompt">Append the opening of an assistant turn for the model to complete.</param>
    /// <param name="enableThinking">Qwen3 only: false appends <see cref="EmptyThinkBlock"/> to the
    /// generation prompt; true or null leave the model free to think.</param>
    public static string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt, bool? enableThinking = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var sb = new StringBuilder();
        foreach (var m in messages)
        {
            Validate(m);
            sb.Append(ImStart).Append(m.Role).Append('\n').Append(m.Content).Append(ImEnd).Append('\n');
        }
        if (addGenerationPrompt)
        {
            sb.Append(ImStart).Append("assistant\n");
            if (enableThinking == false) sb.Append(EmptyThinkBlock);
        }
        return sb.ToString();
    }

    /// <summary>
    /// Encodes the conversation: the markers become their special-token ids and the roles and contents
    /// are encoded with <paramref name="contentPolicy"/> (by default as plain text, so a message cannot
    /// inject <c>&lt;|im_end|&gt;</c>). With contents free of special tokens this equals
    /// <c>tokenizer.Encode(Render(...))</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The tokenizer lacks <c>&lt;|im_start|&gt;</c> or <c>&lt;|im_end|&gt;</c>.</exception>
    public static int[] Encode(PretrainedTokenizer tokenizer, IEnumerable<ChatMessage> messages, bool addGenerationPrompt,
        bool? enableThinking = null, SpecialTokenPolicy contentPolicy = SpecialTokenPolicy.EncodeAsText)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(messages);
        int imStart = tokenizer.TokenToId(ImStart) ?? throw new ArgumentException($"the tokenizer has no {ImStart} token", nameof(tokenizer));
        int imEnd = tokenizer.TokenToId(ImEnd) ?? throw new ArgumentException($"the tokenizer has no {ImEnd} token", nameof(tokenizer));
        var ids = new List<int>();
        int[] newline = tokenizer.Encode("\n", SpecialTokenPolicy.EncodeAsText);
        foreach (var m in messages)
        {
            Validate(m);
            ids.Add(imStart);
            ids.AddRange(tokenizer.Encode(m.Role + "\n" + m.Content, contentPolicy));
            ids.Add(imEnd);
            ids.AddRange(newline);
        }
        if (addGenerationPrompt)
        {
            ids.Add(imStart);
            // The think block's <think> tags are added tokens: encode it with them allowed.
            string opening = "assistant\n" + (enableThinking == false ? EmptyThinkBlock : "");
            ids.AddRange(tokenizer.Encode(opening, SpecialTokenPolicy.Allow));
        }
        return ids.ToArray();
    }

    private static void Validate(ChatMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        if (string.IsNullOrEmpty(m.Role) || m.Role.Contains('\n') || m.Role.Contains(ImStart) || m.Role.Contains(ImEnd))
            throw new ArgumentException($"invalid chat role '{m.Role}'", nameof(m));
        ArgumentNullException.ThrowIfNull(m.Content);
    }
}
