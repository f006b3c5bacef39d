namespace OnlineRl.Redis;

/// <summary>
/// The Lua scripts behind <see cref="RedisEventBus"/>. Each runs atomically inside Redis, so two consumers
/// can never claim the same handed-back entry and a publish can never slip past the capacity check.
/// </summary>
/// <remarks>
/// Redelivery: Redis has no "un-claim", so a nacked entry, the entries of a consumer that leaves, and the
/// entries of a consumer that died (idle longer than the claim timeout) are moved to a pseudo-consumer,
/// the hand-back consumer, with <c>XCLAIM ... JUSTID</c> (which keeps the delivery counter). Receiving
/// claims from it first (plain <c>XCLAIM</c>, which counts one more delivery), then reads new entries.
/// </remarks>
internal static class StreamScripts
{
    // Stream ids are "ms-seq"; ms fits a Lua number (double) exactly.
    private const string IdHelpers = """
        local function parse_id(id)
          local ms, seq = string.match(id, '^(%d+)-(%d+)$')
          return tonumber(ms), tonumber(seq)
        end
        local function id_less(a, b)
          local am, as = parse_id(a)
          local bm, bs = parse_id(b)
          return am < bm or (am == bm and as < bs)
        end
        -- Drops the entries every consumer group has acknowledged (none while no group exists) and
        -- returns how many the stream still holds. A group still needs its oldest pending entry and
        -- everything after its last delivered one.
        local function trim(stream)
          if redis.call('EXISTS', stream) == 0 then return 0 end
          local groups = redis.call('XINFO', 'GROUPS', stream)
          if #groups == 0 then return redis.call('XLEN', stream) end
          local floor = nil
          for _, g in ipairs(groups) do
            local info = {}
            for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
            local oldest
            if info['pending'] > 0 then
              oldest = redis.call('XPENDING', stream, info['name'])[2]
            else
              local ms, seq = parse_id(info['last-delivered-id'])
              oldest = string.format('%d-%d', ms, seq + 1)
            end
            if floor == nil or id_less(oldest, floor) then floor = oldest end
          end
          redis.call('XTRIM', stream, 'MINID', floor)
          return redis.call('XLEN', stream)
        end

        """;

    /// <summary>KEYS[1] stream. ARGV[1] capacity, ARGV[2] new-entry channel, ARGV[3..] field/value pairs.
    /// Returns the new entry id, or nil when the topic holds its capacity of unfinished entries. Trims only
    /// when the stream is full (the capacity bounds its length either way; trimming costs a look at every
    /// group).</summary>
    public const string Publish = IdHelpers + """
        local capacity = tonumber(ARGV[1])
        if redis.call('XLEN', KEYS[1]) >= capacity and trim(KEYS[1]) >= capacity then return false end
        local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
        redis.call('PUBLISH', ARGV[2], '')
        return id
        """;

    /// <summary>KEYS[1] stream. Returns how many entries the stream holds after trimming.</summary>
    public const string Trim = IdHelpers + "return trim(KEYS[1])";

    /// <summary>KEYS[1] stream. ARGV[1] group. Creates the group at id 0 (and the stream) unless it exists,
    /// after trimming: a new group starts at the oldest entry some existing group still needs.</summary>
    public const string CreateGroup = IdHelpers + """
        trim(KEYS[1])
        local created = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
        if type(created) == 'table' and created.err then
          if string.sub(created.err, 1, 9) ~= 'BUSYGROUP' then return redis.error_reply(created.err) end
          return 0
        end
        return 1
        """;

    /// <summary>KEYS[1] stream. ARGV[1] group, ARGV[2] consumer, ARGV[3] hand-back consumer.
    /// Returns {id, fields, delivery count} of a handed-back entry (oldest first), else of the next new
    /// entry, else nil.</summary>
    public const string Receive = """
        local start = '-'
        while true do
          local handed = redis.call('XPENDING', KEYS[1], ARGV[1], start, '+', 1, ARGV[3])
          if #handed == 0 then break end
          local id = handed[1][1]
          local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
          if claimed[1] then return {id, claimed[1][2], handed[1][4] + 1} end
          start = '(' .. id -- the entry is gone from the stream; try the next one
        end
        local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
        if read then
          local entry = read[1][2][1]
          return {entry[1], entry[2], 1}
        end
        return false
        """;

    /// <summary>KEYS[1] stream. ARGV[1] group, ARGV[2] id, ARGV[3] acknowledged channel. Returns 1 when the
    /// entry was pending, 0 when it was already acknowledged (or never delivered).</summary>
    public const string Ack = """
        local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
        if acked > 0 then redis.call('PUBLISH', ARGV[3], '') end
        return acked
        """;

    /// <summary>KEYS[1] stream. ARGV[1] group, ARGV[2] consumer, ARGV[3] hand-back consumer, ARGV[4] id,
    /// ARGV[5] new-entry channel. Hands the entry back only when this consumer holds it; returns 1 if so.</summary>
    public const string Nack = """
        local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[4], ARGV[4], 1, ARGV[2])
        if #held == 0 then return 0 end
        redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[4], 'JUSTID')
        redis.call('PUBLISH', ARGV[5], '')
        return 1
        """;

    /// <summary>KEYS[1] stream. ARGV[1] group, ARGV[2] consumer, ARGV[3] hand-back consumer, ARGV[4]
    /// new-entry channel, ARGV[5] "1" to remove the consumer afterwards, ARGV[6..] ids to keep. Hands back
    /// every other entry the consumer holds (atomically with the removal, which would otherwise drop them);
    /// returns how many.</summary>
    public const string HandBackAll = """
        local keep = {}
        for i = 6, #ARGV do keep[ARGV[i]] = true end
        local start, moved = '-', 0
        while true do
          local held = redis.call('XPENDING', KEYS[1], ARGV[1], start, '+', 100, ARGV[2])
          if #held == 0 then break end
          local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0}
          for _, e in ipairs(held) do
            if not keep[e[1]] then args[#args + 1] = e[1] end
          end
          if #args > 5 then
            args[#args + 1] = 'JUSTID'
            redis.call(unpack(args))
            moved = moved + #args - 6
          end
          start = '(' .. held[#held][1]
        end
        if ARGV[5] == '1' then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
        if moved > 0 then redis.call('PUBLISH', ARGV[4], '') end
        return moved
        """;

    /// <summary>KEYS[1] stream. ARGV[1] group, ARGV[2] consumer, ARGV[3] hand-back consumer, ARGV[4] claim
    /// timeout in ms, ARGV[5] new-entry channel, ARGV[6..] ids the consumer holds. Resets the idle time of
    /// the entries this live consumer still holds, then hands back every other entry idle longer than the
    /// timeout (its consumer died); returns how many were handed back.</summary>
    public const string Maintain = """
        for i = 6, #ARGV do
          local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
          if #held > 0 then redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID') end
        end
        local start, moved = '-', 0
        while true do
          local idle = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[4], start, '+', 100)
          if #idle == 0 then break end
          local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[3], ARGV[4]}
          for _, e in ipairs(idle) do
            if e[2] ~= ARGV[3] then args[#args + 1] = e[1] end
          end
          if #args > 5 then
            args[#args + 1] = 'JUSTID'
            moved = moved + #redis.call(unpack(args))
          end
          start = '(' .. idle[#idle][1]
        end
        if moved > 0 then redis.call('PUBLISH', ARGV[5], '') end
        return moved
        """;
}
