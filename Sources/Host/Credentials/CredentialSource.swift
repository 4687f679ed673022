import FoundationEssentials

/// How one request to a source proves who sends it.
enum RequestAuthorization: Sendable, Equatable {
    case anonymous
    /// S3-style keys, signed by libcurl (S3, TOS, GCS's interoperability HMAC keys).
    case sigV4(AWSSigning)
    /// An OAuth access token (GCS with a service account or Workload Identity).
    case bearer(String)

    /// Headers the request carries besides SigV4's own.
    var headers: [String] {
        if case .bearer(let token) = self { ["Authorization: Bearer \(token)"] } else { [] }
    }

    var signing: AWSSigning? {
        if case .sigV4(let signing) = self { signing } else { nil }
    }
}

/// Where a source's credentials come from. Asked before every request (each listing page,
/// each ranged part), so credentials that expire are renewed between the parts of a long
/// download instead of failing it half-way. Blocking: called on download threads.
protocol CredentialSource: Sendable {
    /// Which credentials these are, for logs and errors; never a secret.
    var description: String { get }
    func authorization(isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> RequestAuthorization
}

/// Credentials that never change: explicit keys, or none.
struct FixedCredentials: CredentialSource {
    let value: RequestAuthorization
    let description: String

    func authorization(isCancelled: @escaping @Sendable () -> Bool) -> RequestAuthorization { value }
}

/// What an issuer (STS, an OAuth token endpoint) handed out, and until when it is good.
struct IssuedCredential: Sendable {
    var authorization: RequestAuthorization
    var expires: Date
}
