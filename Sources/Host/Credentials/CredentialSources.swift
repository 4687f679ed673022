import Crypto
import FoundationEssentials
import Logging
import Synchronization

/// Chooses the credentials of an object-store download and keeps the ones an issuer handed
/// out, one source per set of credentials, shared by every download: a session or token
/// fetched for one download serves the next until it nears expiry. Thread-safe.
///
/// The order, as AWS's SDKs take it (botocore `create_credential_resolver`: environment keys,
/// then web identity) and Google's (`google.auth.default`: a key file, then the metadata
/// server): explicit keys (a request's, else the environment's), then the issued kind (S3:
/// web identity; GCS: a service-account key, then the metadata server), then anonymous.
final class CredentialSources: Sendable {
    private let http: CurlHTTPClient
    private let logger: Logger
    private let issued = Mutex<[String: RefreshingCredentials]>([:])
    /// Request-supplied keys make new sources; a bound keeps them from piling up.
    static let maximumKept = 32

    init(http: CurlHTTPClient, logger: Logger) {
        self.http = http
        self.logger = logger
    }

    /// `allowedHosts` bounds the token endpoints a request names (a key's `token_uri`); the
    /// environment's endpoints are the operator's and are not checked.
    func source(
        for flavor: ArtifactSource.ObjectStoreFlavor, _ store: DownloadSettings.ObjectStoreCredentials, allowedHosts: HostAllowList
    ) throws(RuntimeError) -> any CredentialSource {
        switch (store.accessKey, store.secretKey) {
        case (.some(let accessKey), .some(let secretKey)):
            let signing = AWSSigning(
                accessKey: accessKey, secretKey: secretKey, sessionToken: store.sessionToken, region: store.region.isEmpty ? "us-east-1" : store.region)
            return FixedCredentials(value: .sigV4(signing), description: "\(flavor.rawValue) access keys")
        case (.some, nil), (nil, .some):
            throw RuntimeError(.invalidArgument, "\(flavor.rawValue) credentials need both an access key and a secret key")
        case (nil, nil): break
        }
        if flavor == .s3, let identity = store.webIdentity {
            let exchange = WebIdentityExchange(settings: identity, region: store.region, http: http)
            let key = ["sts", identity.stsEndpoint, identity.roleARN, identity.tokenFile, identity.sessionName ?? "", "\(identity.durationSeconds ?? 0)", store.region]
            return try refreshing(key.joined(separator: "\u{0}")) {
                (identity.description, { isCancelled throws(RuntimeError) in try exchange.fetch(isCancelled: isCancelled) })
            }
        }
        if flavor == .gcs, let keySource = store.googleKey {
            let json = try keySource.bytes()
            let hosts: HostAllowList? = keySource.isOperators ? nil : allowedHosts
            // Found by the key's content (and the list its token endpoint was checked
            // against) before the key is parsed: the next download with the same key reuses
            // the source and its token; a rotated key file makes a new one.
            let key = ["gcs-key", FileDigest.hex(SHA256.hash(data: json)), hosts.map { $0.entries.joined(separator: ",") } ?? "operator's"]
            return try refreshing(key.joined(separator: "\u{0}")) { [http] () throws(RuntimeError) in
                let key = try GoogleServiceAccountKey(json: json)
                if let hosts, !hosts.allows(url: key.tokenURI) {
                    throw RuntimeError(.permissionDenied, "the service-account key's token_uri host \"\(CurlURL.host(of: key.tokenURI))\" is not in DOWNLOADER_ALLOWED_HOSTS")
                }
                return (key.description, { isCancelled throws(RuntimeError) in try key.fetch(http: http, allowedHosts: hosts, isCancelled: isCancelled) })
            }
        }
        if flavor == .gcs, let host = store.metadataHost {
            let server = GoogleMetadataServer(host: host)
            return try refreshing("gcs-metadata\u{0}" + host) { [http] in
                (server.description, { isCancelled throws(RuntimeError) in try server.fetch(http: http, isCancelled: isCancelled) })
            }
        }
        return FixedCredentials(value: .anonymous, description: "anonymous")
    }

    typealias Fetch = @Sendable (_ isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> IssuedCredential

    /// The kept source under `key`, or a new one from `make` (its description and fetch),
    /// which runs only when none is kept.
    private func refreshing(_ key: String, make: () throws(RuntimeError) -> (description: String, fetch: Fetch)) throws(RuntimeError)
        -> RefreshingCredentials
    {
        try issued.withLock { kept throws(RuntimeError) in
            if let source = kept[key] { return source }
            let (description, fetch) = try make()
            if kept.count >= Self.maximumKept { kept.removeAll() }
            let source = RefreshingCredentials(description: description, logger: logger, fetch: fetch)
            kept[key] = source
            return source
        }
    }
}
