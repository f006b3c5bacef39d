using System.Buffers;
using System.Collections.Concurrent;
using System.Text;

namespace OnlineRl.Tokenizers;

/// <summary>
/// The BPE model of a byte-level tokenizer: vocabulary, ranked merges, and the merge algorithm applied to
/// one pre-tokenized piece. Merging follows the Hugging Face tokenizers: repeatedly merge the adjacent
/// pair with the lowest merge rank, the leftmost one among equals. Results are cached per piece.
/// </summary>
internal sealed class BpeModel
{
    /// <summary>Pieces longer than this (in UTF-16 units) are not cached.</summary>
    public const int MaxCachedPieceLength = 256;

    /// <summary>Words up to this many bytes use the quadratic scan; longer ones a heap (O(n log n)).</summary>
    internal const int HeapThreshold = 48;

    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _idToToken;
    private readonly int[] _byteIds = new int[256];
    // (left id << 32 | right id) -> (rank << 32 | merged id)
    private readonly Dictionary<long, long> _merges;
    private readonly bool _ignoreMerges;
    private readonly int _unkId;
    private readonly int _cacheCapacity;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheBySpan;
    private int _cacheCount; // ConcurrentDictionary.Count takes every lock: keep our own (approximate) count

    /// <param name="vocab">Token string (byte-level form) to id.</param>
    /// <param name="merges">Merge pairs in rank order (ids); a pair listed twice keeps its last rank.</param>
    /// <param name="unkId">Id used for bytes missing from the vocabulary, or -1 to drop them.</param>
    /// <param name="ignoreMerges">When set, a piece that is itself a vocabulary token is emitted as is.</param>
    /// <param name="cacheCapacity">Maximum number of cached pieces (0 disables the cache).</param>
    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(int Left, int Right, int Merged)> merges,
        int unkId, bool ignoreMerges, int cacheCapacity)
    {
        _vocab = vocab;
        int maxId = -1;
        foreach (int id in vocab.Values) maxId = Math.Max(maxId, id);
        _idToToken = new string?[maxId + 1];
        foreach (var (token, id) in vocab) _idToToken[id] = token;
        for (int b = 0; b < 256; b++)
            _byteIds[b] = vocab.TryGetValue(ByteLevel.CharOf((byte)b).ToString(), out int id) ? id : -1;
        _merges = new Dictionary<long, long>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (l, r, m) = merges[rank];
            _merges[Pair(l, r)] = ((long)rank << 32) | (uint)m;
        }
        _unkId = unkId;
        _ignoreMerges = ignoreMerges;
        _cacheCapacity = cacheCapacity;
        _cacheBySpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Number of ids the model vocabulary spans (largest id + 1).</summary>
    public int IdCount => _idToToken.Length;

    /// <summary>The model vocabulary (token string to id).</summary>
    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    /// <summary>Number of cached pieces.</summary>
    public int CacheCount => _cache.Count;

    /// <summary>Empties the piece cache.</summary>
    public void ClearCache()
    {
        _cache.Clear();
        Volatile.Write(ref _cacheCount, 0);
    }

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out int id) ? id : null;

    private static long Pair(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Appends the ids of one pre-tokenized piece (text before byte mapping).</summary>
    public void EncodePiece(ReadOnlySpan<char> piece, List<int> output)
    {
        if (piece.IsEmpty) return;
        bool cacheable = _cacheCapacity > 0 && piece.Length <= MaxCachedPieceLength;
        if (cacheable && _cacheBySpan.TryGetValue(piece, out int[]? cached))
        {
            output.AddRange(cached);
            return;
        }
        int maxBytes = Encoding.UTF8.GetMaxByteCount(piece.Length);
        byte[]? rentedBytes = null;
        Span<byte> bytes = maxBytes <= 1024 ? stackalloc byte[maxBytes] : (rentedBytes = ArrayPool<byte>.Shared.Rent(maxBytes));
        int byteCount = Encoding.UTF8.GetBytes(piece, bytes);
        bytes = bytes[..byteCount];
        int[] ids = EncodeBytes(bytes);
        if (rentedBytes is not null) ArrayPool<byte>.Shared.Return(rentedBytes);
        output.AddRange(ids);
        // When the cache is full, new pieces are no longer cached (as in the Hugging Face tokenizers).
        if (cacheable && Volatile.Read(ref _cacheCount) < _cacheCapacity && _cacheBySpan.TryAdd(piece, ids))
            Interlocked.Increment(ref _cacheCount);
    }

    /// <summary>BPE over the UTF-8 bytes of one piece.</summary>
    internal int[] EncodeBytes(ReadOnlySpan<byte> bytes)
    {
        if (_ignoreMerges)
        {
            string whole = ByteLevel.ToByteLevelString(bytes);
            if (_vocab.TryGetValue(whole, out int wholeId)) return [wholeId];
        }
        int[]? rented = null;
        Span<int> symbols = bytes.Length <= 256 ? stackalloc int[bytes.Length] : (rented = ArrayPool<int>.Shared.Rent(bytes.Length));
        int n = 0;
        foreach (byte b in bytes)
        {
            int id = _byteIds[b];
            if (id < 0) id = _unkId;
            if (id < 0) continue; // no unk token: the byte is dropped, as in the Hugging Face BPE
            symbols[n++] = id;
        }
        int[] result = n <= HeapThreshold ? MergeByScan(symbols[..n]) : MergeByHeap(symbols[..n]);
        if (rented is not null) ArrayPool<int>.Shared.Return(rented);
        return result;
    }

    /// <summary>Merging by rescanning the pair ranks (fast for short words).</summary>
    internal int[] MergeByScan(Span<int> symbols)
    {
        int n = symbols.Length;
        if (n <= 1) return symbols.ToArray();
        Span<long> pairs = n <= 256 ? stackalloc long[n - 1] : new long[n - 1];
        for (int i = 0; i < n - 1; i++) pairs[i] = Lookup(symbols[i], symbols[i + 1]);
        while (n > 1)
        {
            int best = -1;
            long bestValue = long.MaxValue;
            for (int i = 0; i < n - 1; i++)
            {
                if (pairs[i] < bestValue) { bestValue = pairs[i]; best = i; }
            }
            if (best < 0) break;
            symbols[best] = (int)(bestValue & 0xFFFFFFFF);
            // Remove symbol best + 1 and pair best.
            symbols.Slice(best + 2, n - best - 2).CopyTo(symbols[(best + 1)..]);
            if (best + 1 < n - 1) pairs.Slice(best + 1, n - best - 2).CopyTo(pairs[best..]);
            n--;
            if (best > 0) pairs[best - 1] = Lookup(symbols[best - 1], symbols[best]);
            if (best < n - 1) pairs[best] = Lookup(symbols[best], symbols[best + 1]);
        }
        return symbols[..n].ToArray();
    }

    // (rank << 32 | merged id), or long.MaxValue when the pair does not merge.
    private long Lookup(int left, int right) =>
        _merges.TryGetValue(Pair(left, right), out long v) ? v : long.MaxValue;

    /// <summary>Merging with a priority queue over (rank, position) and a linked list of symbols.</summary>
    internal int[] MergeByHeap(Span<int> initial)
    {
        int n = initial.Length;
        if (n <= 1) return initial.ToArray();
        var sym = initial.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var version = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; alive[i] = true; }
        var queue = new PriorityQueue<(int Left, int LeftVersion, int Right, int RightVersion), (long Rank, int Pos)>();
        void Push(int left)
        {
            int right = next[left];
            if (left < 0 || right < 0) return;
            long v = Lookup(sym[left], sym[right]);
            if (v != long.MaxValue) queue.Enqueue((left, version[left], right, version[right]), (v >> 32, left));
        }
        for (int i = 0; i < n - 1; i++) Push(i);
        while (queue.TryDequeue(out var e, out _))
        {
            if (!alive[e.Left] || version[e.Left] != e.LeftVersion || next[e.Left] != e.Right
                || !alive[e.Right] || version[e.Right] != e.RightVersion)
                continue;
            long v = Lookup(sym[e.Left], sym[e.Right]);
            sym[e.Left] = (int)(v & 0xFFFFFFFF);
            version[e.Left]++;
            alive[e.Right] = false;
            int after = next[e.Right];
            next[e.Left] = after;
            if (after >= 0) prev[after] = e.Left;
            if (prev[e.Left] >= 0) Push(prev[e.Left]);
            Push(e.Left);
        }
        var result = new List<int>(n);
        for (int i = 0; i >= 0; i = next[i]) result.Add(sym[i]);
        return result.ToArray();
    }
}
