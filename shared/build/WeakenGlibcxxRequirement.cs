// MSBuild inline task (compiled by RoslynCodeTaskFactory from TorchSharp.targets).
//
// Why: TorchSharp 0.107's libLibTorchSharp.so is built with GCC 13 and so records a version requirement
// on GLIBCXX_3.4.32 for one symbol, std::ios_base_library_init(). GCC 13's <iostream> emits only a
// `.globl` reference to that symbol (to pin the newer libstdc++); no relocation uses it, so nothing ever
// binds or calls it. Older libstdc++ (Debian 12 stops at GLIBCXX_3.4.30) lacks that version, and the
// dynamic loader refuses the library before any code runs. Marking the GLIBCXX_3.4.32 entry of
// .gnu.version_r as weak (VER_FLG_WEAK, ELF gABI "Symbol Versioning") makes the loader accept its
// absence. Every other requirement (libtorch 2.10 needs GLIBCXX <= 3.4.29) is left as it is.
//
// The file is rewritten through a temporary copy and a rename, never in place, because the build may
// have hard-linked it to the NuGet package cache.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class WeakenGlibcxxRequirement : Task
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    /// <summary>The ELF shared libraries to fix (x86-64 or arm64, little-endian, 64-bit).</summary>
    [Required] public ITaskItem[] Libraries { get; set; } = Array.Empty<ITaskItem>();

    /// <summary>The version whose requirement becomes weak.</summary>
    [Required] public string Version { get; set; } = "";

    /// <summary>"auto": only when this system's libstdc++ lacks <see cref="Version"/>; "true": always; "false": never.</summary>
    public string Mode { get; set; } = "auto";

    public override bool Execute()
    {
        if (Mode == "false") return true;
        if (Mode == "auto" && SystemLibstdcxxHas(Version)) return true;
        foreach (var item in Libraries)
        {
            string path = item.ItemSpec;
            try
            {
                byte[] image = File.ReadAllBytes(path);
                int? flagsOffset = FindVernauxFlags(image, Version);
                if (flagsOffset is null)
                {
                    Log.LogMessage(MessageImportance.Low, $"{path}: requires no {Version}; left as it is");
                    continue;
                }
                ushort flags = BitConverter.ToUInt16(image, flagsOffset.Value);
                if ((flags & VerFlgWeak) != 0) continue;
                BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(image, flagsOffset.Value);
                DateTime written = File.GetLastWriteTimeUtc(path);
                string temporary = path + ".weakening";
                File.WriteAllBytes(temporary, image);
                // Same size and time as the package's file, so incremental copies see it as up to date.
                File.SetLastWriteTimeUtc(temporary, written);
                // Delete, then move: the old name may be a hard link into the package cache, which must stay intact.
                File.Delete(path);
                File.Move(temporary, path);
                Log.LogMessage(MessageImportance.High, $"{Path.GetFileName(path)}: made the {Version} requirement weak (this system's libstdc++ is older)");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                Log.LogError($"{path}: could not weaken its {Version} requirement: {e.Message}");
            }
        }
        return !Log.HasLoggedErrors;
    }

    // Walks the section headers to .gnu.version_r, then its Elf64_Verneed / Elf64_Vernaux chains, and
    // returns the file offset of vna_flags of the entry named `version`.
    private static int? FindVernauxFlags(byte[] b, string version)
    {
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new FormatException("not an ELF file");
        if (b[4] != 2 || b[5] != 1) throw new FormatException("not a 64-bit little-endian ELF file");
        long sectionHeaders = BitConverter.ToInt64(b, 0x28);
        int entrySize = BitConverter.ToUInt16(b, 0x3A);
        int count = BitConverter.ToUInt16(b, 0x3C);
        for (int i = 0; i < count; i++)
        {
            int header = checked((int)(sectionHeaders + (long)i * entrySize));
            if (BitConverter.ToUInt32(b, header + 4) != ShtGnuVerneed) continue;
            int link = (int)BitConverter.ToUInt32(b, header + 40);
            int strings = checked((int)BitConverter.ToInt64(b, checked((int)(sectionHeaders + (long)link * entrySize)) + 24));
            int need = checked((int)BitConverter.ToInt64(b, header + 24));
            while (true)
            {
                int auxCount = BitConverter.ToUInt16(b, need + 2);
                int aux = need + (int)BitConverter.ToUInt32(b, need + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    int name = strings + (int)BitConverter.ToUInt32(b, aux + 8);
                    if (CString(b, name) == version) return aux + 4;
                    aux += (int)BitConverter.ToUInt32(b, aux + 12);
                }
                uint next = BitConverter.ToUInt32(b, need + 12);
                if (next == 0) break;
                need += (int)next;
            }
        }
        return null;
    }

    private static readonly string[] LibstdcxxPaths =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
    };

    // The version names a libstdc++ provides are strings in its .gnu.version_d section.
    private static bool SystemLibstdcxxHas(string version)
    {
        foreach (string path in LibstdcxxPaths)
        {
            if (!File.Exists(path)) continue;
            byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
            return IndexOf(File.ReadAllBytes(path), needle) >= 0;
        }
        return false;
    }

    // The task compiles against netstandard2.0, which has no span search.
    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    private static string CString(byte[] b, int offset)
    {
        int end = Array.IndexOf(b, (byte)0, offset);
        return Encoding.ASCII.GetString(b, offset, end - offset);
    }
}
