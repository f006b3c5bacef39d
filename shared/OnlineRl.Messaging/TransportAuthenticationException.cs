namespace OnlineRl.Messaging;

/// <summary>
/// A broker or store refused this client's credentials or certificates (a wrong password, an unknown user, a TLS
/// certificate it does not trust, TLS spoken to a plaintext port): retrying cannot help, so the transport fails at
/// once instead of waiting. The message names the endpoint and the reason, never a secret.
/// </summary>
/// <param name="message">What was refused, by which endpoint, and why.</param>
/// <param name="inner">The client library's error, if any.</param>
public sealed class TransportAuthenticationException(string message, Exception? inner = null) : Exception(message, inner);
