namespace OnlineRl.Torch.NN;

/// <summary>
/// Base of every layer and model: named parameters, buffers and child modules, a state dict,
/// train/eval mode and device/type moves. Subclasses register their parts in the constructor.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Parameter Value)> ownParameters = new();
    private readonly List<(string Name, Tensor Value)> ownBuffers = new();
    private readonly HashSet<string> transientBuffers = new();
    private readonly List<(string Name, Module Value)> children = new();

    /// <summary>True in training mode (dropout active), false after <see cref="eval"/>.</summary>
    public bool training { get; private set; } = true;

    /// <summary>Registers a child module under <paramref name="name"/> and returns it.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        children.Add((name, module));
        return module;
    }

    /// <summary>Registers a parameter under <paramref name="name"/> and returns it.</summary>
    protected Parameter RegisterParameter(string name, Parameter parameter)
    {
        CheckName(name);
        ownParameters.Add((name, parameter));
        return parameter;
    }

    /// <summary>
    /// Registers a non-trainable tensor that moves with the module and returns it. Persistent buffers are
    /// part of the state dict; others (e.g. rotary tables derived from the config) are not.
    /// </summary>
    protected Tensor RegisterBuffer(string name, Tensor buffer, bool persistent = true)
    {
        CheckName(name);
        buffer.DetachFromDisposeScope();
        ownBuffers.Add((name, buffer));
        if (!persistent) transientBuffers.Add(name);
        return buffer;
    }

    /// <summary>Removes a child module (the caller disposes it) and returns it.</summary>
    protected Module UnregisterModule(string name)
    {
        var index = children.FindIndex(c => c.Name == name);
        if (index < 0) throw new ArgumentException($"{GetType().Name} has no child module '{name}'", nameof(name));
        var child = children[index].Value;
        children.RemoveAt(index);
        return child;
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"'{name}' is not a valid member name (non-empty, no dots)", nameof(name));
        if (ownParameters.Any(p => p.Name == name) || ownBuffers.Any(b => b.Name == name) || children.Any(c => c.Name == name))
            throw new ArgumentException($"'{name}' is already registered in {GetType().Name}", nameof(name));
    }

    /// <summary>Parameters with dotted names ("layers.0.weight"), this module's first, then each child's.</summary>
    public IEnumerable<(string name, Parameter parameter)> named_parameters(bool recurse = true)
    {
        foreach (var (name, value) in ownParameters) yield return (name, value);
        if (!recurse) yield break;
        foreach (var (childName, child) in children)
            foreach (var (name, value) in child.named_parameters())
                yield return ($"{childName}.{name}", value);
    }

    /// <summary>All parameters, in <see cref="named_parameters"/> order.</summary>
    public IEnumerable<Parameter> parameters() => named_parameters().Select(p => p.parameter);

    /// <summary>Buffers with dotted names (only those saved in the state dict when <paramref name="persistentOnly"/>).</summary>
    public IEnumerable<(string name, Tensor buffer)> named_buffers(bool persistentOnly = false)
    {
        foreach (var (name, value) in ownBuffers)
            if (!persistentOnly || !transientBuffers.Contains(name)) yield return (name, value);
        foreach (var (childName, child) in children)
            foreach (var (name, value) in child.named_buffers(persistentOnly))
                yield return ($"{childName}.{name}", value);
    }

    /// <summary>Direct children with their names.</summary>
    public IEnumerable<(string name, Module module)> named_children() => children.Select(c => (c.Name, c.Value));

    /// <summary>Number of scalar parameters.</summary>
    public long parameter_count() => parameters().Sum(p => p.numel());

    /// <summary>
    /// Parameters and buffers by dotted name. The tensors are the module's own (not copies): do not
    /// dispose them; copy them if they must outlive changes.
    /// </summary>
    public Dictionary<string, Tensor> state_dict()
    {
        var state = new Dictionary<string, Tensor>();
        foreach (var (name, p) in named_parameters()) state[name] = p;
        foreach (var (name, b) in named_buffers(persistentOnly: true)) state[name] = b;
        return state;
    }

    /// <summary>
    /// Copies values from <paramref name="state"/> into this module's parameters and buffers. With
    /// <paramref name="strict"/>, missing or unexpected names are errors; shape mismatches always are.
    /// </summary>
    public void load_state_dict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        var own = state_dict();
        if (strict)
        {
            var missing = own.Keys.Where(k => !state.ContainsKey(k)).ToList();
            var unexpected = state.Keys.Where(k => !own.ContainsKey(k)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new TorchException($"state dict does not match {GetType().Name}: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", unexpected)}]");
        }
        using var _ = torch.no_grad();
        foreach (var (name, target) in own)
        {
            if (!state.TryGetValue(name, out var source)) continue;
            var expected = target.shape;
            var actual = source.shape;
            if (!expected.SequenceEqual(actual))
                throw new TorchException($"shape mismatch for '{name}': the module has [{string.Join(", ", expected)}], the state dict [{string.Join(", ", actual)}]");
            target.copy_(source);
        }
    }

    /// <summary>Sets training mode here and in every child; returns this.</summary>
    public Module train(bool mode = true)
    {
        training = mode;
        foreach (var (_, child) in children) child.train(mode);
        return this;
    }

    /// <summary>Sets evaluation mode (no dropout); returns this.</summary>
    public Module eval() => train(false);

    /// <summary>Clears every parameter's gradient.</summary>
    public void zero_grad()
    {
        foreach (var p in parameters()) p.grad = null;
    }

    /// <summary>Moves every parameter and buffer to <paramref name="device"/> in place; returns this.</summary>
    public Module to(Device device) => Move(t => t.to(device, t.dtype));

    /// <summary>Converts every floating-point parameter and buffer to <paramref name="dtype"/> in place; returns this.</summary>
    public Module to(ScalarType dtype) => Move(t => t.dtype.IsFloatingPoint() ? t.to(t.device, dtype) : t.to(t.device, t.dtype));

    private Module Move(Func<Tensor, Tensor> convert)
    {
        foreach (var tensor in parameters().Concat(named_buffers().Select(b => b.buffer)))
        {
            var requiresGrad = tensor.requires_grad;
            using (torch.no_grad())
            {
                var moved = convert(tensor).DetachFromDisposeScope();
                // The object keeps its identity (optimizers and fields still point at it); only its native tensor changes.
                tensor.ReplaceHandle(Native.orl_alias(moved.Handle));
                moved.Dispose();
            }
            if (requiresGrad && !tensor.requires_grad) tensor.requires_grad = true;
        }
        return this;
    }

    /// <summary>Releases every parameter and buffer of this module and its children.</summary>
    public void Dispose()
    {
        foreach (var (_, child) in children) child.Dispose();
        foreach (var (_, p) in ownParameters) p.Dispose();
        foreach (var (_, b) in ownBuffers) b.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A module with a typed forward pass.</summary>
public abstract class Module<TInput, TOutput> : Module
{
    /// <summary>Computes the output.</summary>
    public abstract TOutput forward(TInput input);

    /// <summary>Same as <see cref="forward"/>, so modules can be called like functions.</summary>
    public TOutput call(TInput input) => forward(input);
}
