using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;

namespace OnlineRl.TorchSharp.Tests;

/// <summary>
/// Which native libraries the process runs on. shared/build/TorchSharp.targets copies TorchSharp's
/// libLibTorchSharp.so into the build output and, where the system's libstdc++ lacks GLIBCXX_3.4.32
/// (Debian 12), marks that one version requirement weak. Should that copy fail to load, TorchSharp would
/// quietly copy the packages from the NuGet cache into &lt;output&gt;/cpu/ and try those instead.
/// </summary>
public partial class NativeLibraryTests
{
    private const string Requirement = "GLIBCXX_3.4.32";

    /// <summary>The files of the process's mapped shared libraries whose names start with <paramref name="fileName"/> (libstdc++.so.6 is libstdc++.so.6.0.30).</summary>
    private static List<string> Mapped(string fileName)
    {
        torch.zeros(1).Dispose(); // TorchSharp loads its libraries with the first tensor
        return File.ReadAllLines("/proc/self/maps")
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length >= 6 && Path.GetFileName(fields[5]).StartsWith(fileName, StringComparison.Ordinal))
            .Select(fields => fields[5]).Distinct().ToList();
    }

    private static string LoadedLibTorchSharp()
    {
        var paths = Mapped("libLibTorchSharp.so");
        Assert.True(paths.Count == 1, "mapped libLibTorchSharp.so files: " + string.Join(", ", paths));
        return paths[0];
    }

    [Fact]
    public void TorchSharp_runs_on_the_native_files_of_the_build_output()
    {
        var output = Path.GetFullPath(AppContext.BaseDirectory);
        var expected = new[] { Path.Combine(output, "runtimes", "linux-x64", "native"), output.TrimEnd('/') };
        var loaded = LoadedLibTorchSharp();
        Assert.True(expected.Contains(Path.GetDirectoryName(loaded)),
            $"libLibTorchSharp.so was loaded from {loaded}, not from the build output ({string.Join(" or ", expected)}): "
            + "TorchSharp could not load the build's copy and fell back to copying the NuGet package");
        // libtorch itself comes from the same folder, not from a copy TorchSharp made.
        var torchCpu = Mapped("libtorch_cpu.so");
        Assert.True(torchCpu.Count == 1 && Path.GetDirectoryName(torchCpu[0]) == Path.GetDirectoryName(loaded),
            $"libtorch_cpu.so was loaded from {string.Join(", ", torchCpu)}, libLibTorchSharp.so from {loaded}");
    }

    [SkippableFact]
    public void Where_libstdcxx_lacks_GLIBCXX_3_4_32_the_outputs_requirement_is_weak_and_the_package_cache_untouched()
    {
        Skip.If(ReadElf("--version") is null, "needs readelf (Debian package binutils) to read the ELF version sections");
        var libstdcxx = Mapped("libstdc++.so.6");
        Assert.True(libstdcxx.Count == 1, "mapped libstdc++ files: " + string.Join(", ", libstdcxx));
        var lacks = !Section(ReadElf("-V", "--wide", libstdcxx[0])!, "Version definition section").Contains($"Name: {Requirement}");

        var packageFile = typeof(NativeLibraryTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "LibTorchSharpPackageFile").Value!;
        Assert.True(File.Exists(packageFile), $"the NuGet package's libLibTorchSharp.so ({packageFile}) is missing");
        Assert.Equal("none", RequirementFlags(packageFile));

        var loaded = LoadedLibTorchSharp();
        if (lacks)
            Assert.Equal("WEAK", RequirementFlags(loaded));
        else // the build leaves the library alone on a system that has the version (WeakenGlibcxx=auto)
            Assert.Equal(File.ReadAllBytes(packageFile), File.ReadAllBytes(loaded));
    }

    /// <summary>The flags readelf shows for the GLIBCXX_3.4.32 entry of a library's version needs.</summary>
    private static string RequirementFlags(string library)
    {
        var needs = Section(ReadElf("-V", "--wide", library)!, "Version needs section");
        var entry = RequirementEntry().Match(needs);
        Assert.True(entry.Success, $"{library} requires no {Requirement}; readelf says:\n{needs}");
        return entry.Groups[1].Value;
    }

    [GeneratedRegex(@"Name: GLIBCXX_3\.4\.32\s+Flags: (\S+)")]
    private static partial Regex RequirementEntry();

    /// <summary>The lines of readelf's section <paramref name="title"/> (up to the next blank line).</summary>
    private static string Section(string readelf, string title)
    {
        var start = readelf.IndexOf(title, StringComparison.Ordinal);
        if (start < 0) return "";
        var end = readelf.IndexOf("\n\n", start, StringComparison.Ordinal);
        return end < 0 ? readelf[start..] : readelf[start..end];
    }

    /// <summary>readelf's output, or null when readelf is not installed.</summary>
    private static string? ReadElf(params string[] arguments)
    {
        var info = new ProcessStartInfo("readelf") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"readelf {string.Join(' ', arguments)} failed: {errors}");
            return output.Result;
        }
    }
}
