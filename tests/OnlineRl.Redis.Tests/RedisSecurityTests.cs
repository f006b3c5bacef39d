using System.Diagnostics;
using System.Text;

namespace OnlineRl.Redis.Tests;

// The Redis bus and weight store against real redis-servers that demand credentials: a requirepass password, an
// ACL user (the default user switched off), and TLS with a certificate authority and client certificates made by
// openssl for the test. Right credentials work end to end; wrong ones fail at once (not after retrying for ever)
// with an error that names the endpoint and never shows the password.
public class RedisSecurityTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    /// <summary>A round trip through both the bus and the blob store under the weight store.</summary>
    private static async Task AssertWorks(string address, RedisTls? tls = null)
    {
        await using var bus = new RedisEventBus(new RedisEventBusOptions { Address = address, Tls = tls, KeyPrefix = $"sec-{Guid.NewGuid():N}" });
        await using var subscription = bus.Subscribe("topic", "group", "consumer-0");
        await bus.PublishAsync("topic", "k", Encoding.UTF8.GetBytes("secured")).AsTask().WaitAsync(Guard);
        var message = await subscription.ReceiveAsync().AsTask().WaitAsync(Guard);
        Assert.Equal("secured", Encoding.UTF8.GetString(message.Payload.Span));
        await subscription.AckAsync(message);

        using var connection = RedisConnection.Connect(address, tls);
        var blobs = new RedisBlobStore(connection.GetDatabase());
        await blobs.SetAsync("sec:blob", new byte[] { 1, 2, 3 });
        Assert.Equal(new byte[] { 1, 2, 3 }, await blobs.GetAsync("sec:blob"));
    }

    /// <summary>Connecting fails quickly with a message naming the endpoint, without the password.</summary>
    private static void AssertRefused(string address, int port, string? secret, RedisTls? tls = null)
    {
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<TransportAuthenticationException>(() => RedisConnection.Connect(address, tls).Dispose());
        Assert.True(clock.Elapsed < Guard, $"refusal took {clock.Elapsed}");
        Assert.Contains($"127.0.0.1:{port}", error.Message);
        if (secret is not null) Assert.DoesNotContain(secret, error.Message);
        // The bus fails the same way (its constructor connects).
        var busError = Assert.Throws<TransportAuthenticationException>(() => new RedisEventBus(new RedisEventBusOptions { Address = address, Tls = tls }));
        if (secret is not null) Assert.DoesNotContain(secret, busError.ToString());
    }

    [SkippableFact]
    public async Task A_requirepass_server_takes_the_right_password_and_refuses_a_wrong_or_missing_one_naming_the_endpoint()
    {
        const string password = "pw with spaces & symbols: +/?";
        using var server = RedisServer.Start("--requirepass", password);
        var endpoint = $"127.0.0.1:{server.Port}";
        await AssertWorks($"redis://:{Uri.EscapeDataString(password)}@{endpoint}");

        AssertRefused($"redis://:wrong-password-42@{endpoint}", server.Port, "wrong-password-42");
        AssertRefused($"redis://{endpoint}", server.Port, null);
        Assert.Equal($"redis://:***@{endpoint}", RedisAddress.Describe($"redis://:{Uri.EscapeDataString(password)}@{endpoint}"));
    }

    [SkippableFact]
    public async Task An_acl_user_gets_in_and_a_wrong_password_or_unknown_user_is_refused()
    {
        using var server = RedisServer.Start("--user", "default", "off", "--user", "learner", "on", ">acl-secret-7", "~*", "&*", "+@all");
        var endpoint = $"127.0.0.1:{server.Port}";
        await AssertWorks($"redis://learner:acl-secret-7@{endpoint}");

        AssertRefused($"redis://learner:not-it-9@{endpoint}", server.Port, "not-it-9");
        AssertRefused($"redis://intruder:acl-secret-7@{endpoint}", server.Port, "acl-secret-7");
        Assert.Equal($"redis://learner:***@{endpoint}", RedisAddress.Describe($"redis://learner:acl-secret-7@{endpoint}"));
    }

    [SkippableFact]
    public async Task Tls_with_client_certificates_works_and_an_untrusted_server_or_a_missing_client_certificate_is_refused()
    {
        Skip.If(TestCertificates.MissingReason is not null, TestCertificates.MissingReason);
        using var certificates = TestCertificates.Create();
        var tlsPort = LoopbackPort.Free();
        using var server = RedisServer.Start("--tls-port", tlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--tls-cert-file", certificates.ServerCertificateFile, "--tls-key-file", certificates.ServerKeyFile,
            "--tls-ca-cert-file", certificates.CaFile, "--tls-auth-clients", "yes",
            "--requirepass", "tls-pass-3");
        var address = $"rediss://:tls-pass-3@127.0.0.1:{tlsPort}";
        var trusted = new RedisTls(certificates.CaFile, certificates.ClientCertificateFile, certificates.ClientKeyFile);
        await AssertWorks(address, trusted);

        // The server's certificate is signed by a CA the system does not trust.
        AssertRefused(address, tlsPort, "tls-pass-3", new RedisTls(ClientCertificateFile: certificates.ClientCertificateFile, ClientKeyFile: certificates.ClientKeyFile));
        // The server demands a client certificate.
        AssertRefused(address, tlsPort, "tls-pass-3", new RedisTls(certificates.CaFile));
        // TLS spoken to the plain port.
        AssertRefused($"rediss://:tls-pass-3@127.0.0.1:{server.Port}", server.Port, "tls-pass-3", trusted);
    }

    [Fact]
    public void Malformed_addresses_are_refused_without_showing_the_password()
    {
        var error = Assert.Throws<FormatException>(() => RedisConnection.Options("redis://user:hunter2@host-without-port"));
        Assert.DoesNotContain("hunter2", error.Message);
        Assert.True(RedisAddress.IsAddress("rediss://u:p@h:6380"));
        Assert.False(RedisAddress.IsAddress("redis://h:0"));
        Assert.Equal("rediss://u:***@h:6380", RedisAddress.Describe("rediss://u:p@h:6380"));
    }
}
