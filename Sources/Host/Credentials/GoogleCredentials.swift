import CryptoExtras
import FoundationEssentials

/// A Google service-account key (the JSON file `gcloud iam service-accounts keys create`
/// writes): its private key signs a JWT that the key's token endpoint exchanges for an OAuth
/// access token (RFC 7523, RS256), as Google's client libraries do for
/// `GOOGLE_APPLICATION_CREDENTIALS`.
struct GoogleServiceAccountKey: Sendable {
    let clientEmail: String
    let privateKeyID: String?
    let tokenURI: String
    private let privateKey: _RSA.Signing.PrivateKey

    /// The scope downloads need: reading objects.
    static let scope = "https://www.googleapis.com/auth/devstorage.read_only"

    private struct File: Decodable {
        var type: String?
        var client_email: String?
        var private_key: String?
        var private_key_id: String?
        var token_uri: String?
    }

    init(json: [UInt8]) throws(RuntimeError) {
        guard json.count <= 64 << 10, let file = try? JSONCoding.decode(File.self, from: json) else {
            throw RuntimeError(.invalidArgument, "the GCS service-account key is not a JSON object (at most 64 KiB)")
        }
        guard file.type == nil || file.type == "service_account" else {
            throw RuntimeError(
                .invalidArgument, "the GCS credentials are of type \"\(file.type ?? "")\", not \"service_account\"; give a service-account key")
        }
        guard let email = file.client_email, !email.isEmpty, let pem = file.private_key, !pem.isEmpty else {
            throw RuntimeError(.invalidArgument, "the GCS service-account key needs client_email and private_key")
        }
        do { privateKey = try _RSA.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw RuntimeError(.invalidArgument, "the GCS service-account key's private_key is not a PEM RSA key of 2048 bits or more")
        }
        clientEmail = email
        privateKeyID = file.private_key_id
        tokenURI = try DownloadSettings.baseURL(file.token_uri ?? "https://oauth2.googleapis.com/token", name: "the service-account key's token_uri")
    }

    /// The signed assertion: good for an hour from `now`, for the token endpoint only.
    func assertion(now: Date) throws(RuntimeError) -> String {
        let issued = Int(now.timeIntervalSince1970)
        var header: [String: String] = ["alg": "RS256", "typ": "JWT"]
        if let privateKeyID { header["kid"] = privateKeyID }
        let claims = Claims(iss: clientEmail, scope: Self.scope, aud: tokenURI, iat: issued, exp: issued + 3600)
        guard let headerJSON = try? JSONCoding.encode(header), let claimsJSON = try? JSONCoding.encode(claims) else {
            throw RuntimeError(.internalError, "cannot encode the service-account assertion")
        }
        let signingInput = Self.base64URL(headerJSON) + "." + Self.base64URL(claimsJSON)
        guard let signature = try? privateKey.signature(for: Array(signingInput.utf8), padding: .insecurePKCS1v1_5) else {
            throw RuntimeError(.internalError, "signing the service-account assertion failed")
        }
        return signingInput + "." + Self.base64URL(Array(signature.rawRepresentation))
    }

    private struct Claims: Encodable {
        var iss: String
        var scope: String
        var aud: String
        var iat: Int
        var exp: Int
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacing("+", with: "-").replacing("/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    var description: String { "GCS service account \(clientEmail)" }

    func fetch(http: CurlHTTPClient, allowedHosts: HostAllowList?, isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> IssuedCredential {
        let form = "grant_type=" + CurlURL.percentEncoded("urn:ietf:params:oauth:grant-type:jwt-bearer", keepSlash: false)
            + "&assertion=" + (try assertion(now: Date()))
        let request = HTTPClientRequest(
            method: "POST", url: tokenURI, headers: ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"],
            body: Array(form.utf8), timeout: .seconds(15), idempotent: true, maxResponseBytes: 1 << 20, allowedHosts: allowedHosts)
        return try GoogleAccessToken.request(request, from: "the token endpoint \(tokenURI) for \(clientEmail)", http: http, isCancelled: isCancelled)
    }
}

/// GKE Workload Identity (and any GCE VM): the metadata server hands out the token of the
/// pod's (or VM's) service account. `GCE_METADATA_HOST` names it, as for Google's libraries.
struct GoogleMetadataServer: Sendable {
    let host: String

    var tokenURL: String { "http://\(host)/computeMetadata/v1/instance/service-accounts/default/token" }

    var description: String { "GCS metadata-server token (\(host))" }

    /// Whether this machine is on Google's cloud, as Google's libraries tell on Linux: the
    /// DMI product name a GCE VM (a GKE node included) shows to every container.
    static func isOnGoogleCloud() -> Bool {
        guard let name = ProcFile.read("/sys/class/dmi/id/product_name", limit: 256) else { return false }
        return String(decoding: name, as: UTF8.self).hasPrefix("Google")
    }

    func fetch(http: CurlHTTPClient, isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> IssuedCredential {
        let request = HTTPClientRequest(
            method: "GET", url: tokenURL, headers: ["Metadata-Flavor: Google"], timeout: .seconds(10), idempotent: true, maxResponseBytes: 1 << 20)
        return try GoogleAccessToken.request(request, from: "the metadata server \(host)", http: http, isCancelled: isCancelled)
    }
}

/// The OAuth token answer both Google issuers give.
enum GoogleAccessToken {
    private struct Answer: Decodable {
        var access_token: String?
        var expires_in: Int?
        var error: String?
        var error_description: String?
    }

    static func request(_ request: HTTPClientRequest, from issuer: String, http: CurlHTTPClient, isCancelled: @escaping @Sendable () -> Bool)
        throws(RuntimeError) -> IssuedCredential
    {
        let started = Date()
        let response = try http.send(request, what: "asking \(issuer) for a token", isCancelled: isCancelled)
        let answer = try? JSONCoding.decode(Answer.self, from: response.body)
        guard response.status == 200, let token = answer?.access_token, !token.isEmpty,
            token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else {
            let reason = [answer?.error, answer?.error_description].compactMap { $0 }.joined(separator: ": ")
            let kind: ErrorKind = (400..<500).contains(response.status) ? .permissionDenied : .upstream
            throw RuntimeError(kind, "\(issuer) gave no access token (HTTP \(response.status)\(reason.isEmpty ? "" : ", \(reason)"))")
        }
        let lifetime = TimeInterval(min(max(answer?.expires_in ?? 3600, 1), 86_400))
        return IssuedCredential(authorization: .bearer(token), expires: started.addingTimeInterval(lifetime))
    }
}
