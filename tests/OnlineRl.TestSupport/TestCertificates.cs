using System.Diagnostics;

namespace OnlineRl.TestSupport;

/// <summary>
/// A throw-away certificate authority with a server certificate for 127.0.0.1 and a client certificate, made by
/// Debian's openssl at test time (PEM files in a temporary directory, valid for two days). Dispose deletes them.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private TestCertificates(string directory) => Directory = directory;

    /// <summary>Why TLS tests cannot run here (no openssl), or null when they can.</summary>
    public static string? MissingReason => File.Exists("/usr/bin/openssl") ? null : "needs /usr/bin/openssl (apt-get install openssl)";

    /// <summary>Where the files are.</summary>
    public string Directory { get; }

    /// <summary>The certificate authority's certificate (what clients and servers trust).</summary>
    public string CaFile => Path.Combine(Directory, "ca.crt");

    /// <summary>The server's certificate (subject alternative names IP 127.0.0.1 and localhost), signed by the authority.</summary>
    public string ServerCertificateFile => Path.Combine(Directory, "server.crt");

    /// <summary>The server certificate's private key.</summary>
    public string ServerKeyFile => Path.Combine(Directory, "server.key");

    /// <summary>A client certificate signed by the authority.</summary>
    public string ClientCertificateFile => Path.Combine(Directory, "client.crt");

    /// <summary>The client certificate's private key.</summary>
    public string ClientKeyFile => Path.Combine(Directory, "client.key");

    /// <summary>Makes the authority and both certificates.</summary>
    /// <exception cref="InvalidOperationException">openssl failed (its output is in the message).</exception>
    public static TestCertificates Create()
    {
        var certificates = new TestCertificates(System.IO.Directory.CreateTempSubdirectory("onlinerl-certs-").FullName);
        try
        {
            certificates.OpenSsl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=onlinerl test CA",
                "-keyout", "ca.key", "-out", "ca.crt");
            File.WriteAllText(Path.Combine(certificates.Directory, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
            foreach (var (name, extensions) in new[] { ("server", "server.ext"), ("client", (string?)null) })
            {
                certificates.OpenSsl("req", "-newkey", "rsa:2048", "-nodes", "-subj", $"/CN=onlinerl test {name}", "-keyout", $"{name}.key", "-out", $"{name}.csr");
                string[] sign = ["x509", "-req", "-in", $"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", $"{name}.crt"];
                certificates.OpenSsl(extensions is null ? sign : [.. sign, "-extfile", extensions]);
            }
            return certificates;
        }
        catch
        {
            certificates.Dispose();
            throw;
        }
    }

    /// <summary>Deletes the files.</summary>
    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }

    private void OpenSsl(params string[] arguments)
    {
        var info = new ProcessStartInfo("/usr/bin/openssl") { WorkingDirectory = Directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start openssl");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60))) process.Kill();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"openssl {string.Join(' ', arguments)} failed ({process.ExitCode}): {output.Result}{error.Result}");
    }
}
