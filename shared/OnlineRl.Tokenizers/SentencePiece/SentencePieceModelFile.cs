using System.Text;

namespace OnlineRl.Tokenizers;

/// <summary>The kind of a SentencePiece vocabulary entry (sentencepiece_model.proto, SentencePiece.Type).</summary>
internal enum SentencePieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/// <summary>One vocabulary entry of a SentencePiece model; its id is its index.</summary>
internal sealed record SentencePieceEntry(string Piece, float Score, SentencePieceType Type);

/// <summary>
/// The fields of a SentencePiece model file (tokenizer.model, a ModelProto protocol buffer) this library
/// needs: the pieces with scores and types, the trainer's model type, byte fallback and BOS/EOS/pad ids,
/// and the normalizer settings. Read here because Microsoft.ML.Tokenizers keeps its reader internal and
/// the BPE merges are rebuilt from the scores (see <see cref="SentencePieceBpeTokenizer"/>).
/// Field numbers and defaults from sentencepiece_model.proto.
/// </summary>
internal sealed class SentencePieceModelFile
{
    public const int ModelTypeUnigram = 1, ModelTypeBpe = 2;

    public List<SentencePieceEntry> Pieces { get; } = [];
    public int ModelType { get; private set; } = ModelTypeUnigram;
    public bool ByteFallback { get; private set; }
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public string NormalizerName { get; private set; } = "";
    public int PrecompiledCharsmapLength { get; private set; }
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    /// <exception cref="TokenizerFormatException">The bytes are not a ModelProto; the message names the file and field.</exception>
    public static SentencePieceModelFile Parse(byte[] data, string source)
    {
        var model = new SentencePieceModelFile();
        var top = new Reader(data, 0, data.Length, source, "");
        while (top.Next(out int field, out int wireType))
        {
            switch ((field, wireType))
            {
                case (1, 2): model.Pieces.Add(ReadPiece(top.Message($"pieces[{model.Pieces.Count}]"))); break;
                case (2, 2): model.ReadTrainerSpec(top.Message("trainer_spec")); break;
                case (3, 2): model.ReadNormalizerSpec(top.Message("normalizer_spec")); break;
                default: top.Skip(wireType); break;
            }
        }
        if (model.Pieces.Count == 0) throw new TokenizerFormatException($"{source}: holds no pieces (is it a SentencePiece model?)");
        return model;
    }

    private static SentencePieceEntry ReadPiece(Reader r)
    {
        string piece = "";
        float score = 0;
        var type = SentencePieceType.Normal;
        while (r.Next(out int field, out int wireType))
        {
            switch ((field, wireType))
            {
                case (1, 2): piece = r.String("piece"); break;
                case (2, 5): score = r.Float(); break;
                case (3, 0):
                    long t = r.Varint("type");
                    if (!Enum.IsDefined((SentencePieceType)t)) throw r.Error("type", $"is {t}, not a piece type");
                    type = (SentencePieceType)t;
                    break;
                default: r.Skip(wireType); break;
            }
        }
        if (piece.Length == 0) throw r.Error("piece", "is empty");
        return new SentencePieceEntry(piece, score, type);
    }

    private void ReadTrainerSpec(Reader r)
    {
        while (r.Next(out int field, out int wireType))
        {
            switch ((field, wireType))
            {
                case (3, 0): ModelType = (int)r.Varint("model_type"); break;
                case (24, 0): TreatWhitespaceAsSuffix = r.Varint("treat_whitespace_as_suffix") != 0; break;
                case (35, 0): ByteFallback = r.Varint("byte_fallback") != 0; break;
                case (40, 0): UnkId = (int)r.Varint("unk_id"); break;
                case (41, 0): BosId = (int)r.Varint("bos_id"); break;
                case (42, 0): EosId = (int)r.Varint("eos_id"); break;
                case (43, 0): PadId = (int)r.Varint("pad_id"); break;
                default: r.Skip(wireType); break;
            }
        }
    }

    private void ReadNormalizerSpec(Reader r)
    {
        while (r.Next(out int field, out int wireType))
        {
            switch ((field, wireType))
            {
                case (1, 2): NormalizerName = r.String("name"); break;
                case (2, 2): PrecompiledCharsmapLength = r.Message("precompiled_charsmap").Length; break;
                case (3, 0): AddDummyPrefix = r.Varint("add_dummy_prefix") != 0; break;
                case (4, 0): RemoveExtraWhitespaces = r.Varint("remove_extra_whitespaces") != 0; break;
                case (5, 0): EscapeWhitespaces = r.Varint("escape_whitespaces") != 0; break;
                default: r.Skip(wireType); break;
            }
        }
    }

    /// <summary>Protocol buffer wire format over a slice of the file; errors name the file and field path.</summary>
    private sealed class Reader(byte[] data, int start, int end, string source, string path)
    {
        private readonly int _start = start;
        private int _pos = start;

        public int Length => end - _start;

        public TokenizerFormatException Error(string field, string problem) =>
            new($"{source}: field '{Join(field)}' {problem} (is it a SentencePiece model?)");

        private string Join(string field) => path.Length == 0 ? field : path + "." + field;

        public bool Next(out int field, out int wireType)
        {
            field = wireType = 0;
            if (_pos >= end) return false;
            long tag = Varint("(tag)");
            field = (int)(tag >>> 3);
            wireType = (int)(tag & 7);
            return true;
        }

        public long Varint(string field)
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= end) throw Error(field, $"is cut off at byte {_pos}");
                byte b = data[_pos++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return (long)value;
            }
            throw Error(field, $"has a varint longer than 10 bytes at byte {_pos}");
        }

        public float Float()
        {
            if (end - _pos < 4) throw Error("score", $"is cut off at byte {_pos}");
            float v = BitConverter.ToSingle(data, _pos);
            _pos += 4;
            return v;
        }

        public Reader Message(string field)
        {
            long length = Varint(field);
            if (length < 0 || length > end - _pos) throw Error(field, $"has length {length}, past the end of its message at byte {_pos}");
            var sub = new Reader(data, _pos, _pos + (int)length, source, Join(field));
            _pos += (int)length;
            return sub;
        }

        public string String(string field)
        {
            var sub = Message(field);
            try
            {
                return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(data, sub._pos, sub.Length);
            }
            catch (DecoderFallbackException)
            {
                throw Error(field, "is not valid UTF-8");
            }
        }

        public void Skip(int wireType)
        {
            switch (wireType)
            {
                case 0: Varint("(unknown varint)"); break;
                case 1: Advance(8); break;
                case 2: Message("(unknown field)"); break;
                case 5: Advance(4); break;
                default: throw Error("(tag)", $"has wire type {wireType}, which protocol buffers do not use here");
            }
        }

        private void Advance(int n)
        {
            if (end - _pos < n) throw Error("(unknown field)", $"is cut off at byte {_pos}");
            _pos += n;
        }
    }
}
