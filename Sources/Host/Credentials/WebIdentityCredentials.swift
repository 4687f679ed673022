import FoundationEssentials

/// IRSA on EKS (and any OIDC web identity): a projected service-account token exchanged with
/// STS `AssumeRoleWithWebIdentity` for a short-lived session, as AWS's SDKs do for
/// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`. The token file is read again at each
/// exchange: the kubelet rotates it.
struct WebIdentitySettings: Sendable, Equatable {
    var tokenFile: String
    var roleARN: String
    /// `AWS_ROLE_SESSION_NAME`; AWS's SDKs make one up when it is not set, and so do we.
    var sessionName: String?
    /// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else STS's regional endpoint.
    var stsEndpoint: String
    /// `DOWNLOADER_STS_DURATION_SECONDS`; STS's own default (an hour) when nil.
    var durationSeconds: Int?

    /// The settings the environment describes, or nil without a token file and a role.
    static func fromEnvironment(_ value: (String) -> String?, region: String) throws(RuntimeError) -> WebIdentitySettings? {
        let file = value("AWS_WEB_IDENTITY_TOKEN_FILE")
        let role = value("AWS_ROLE_ARN")
        switch (file, role) {
        case (nil, nil): return nil
        case (.some, nil): throw RuntimeError(.invalidArgument, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not; IRSA needs both")
        case (nil, .some): throw RuntimeError(.invalidArgument, "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not; IRSA needs both")
        case (.some(let file), .some(let role)):
            guard file.hasPrefix("/") else { throw RuntimeError(.invalidArgument, "AWS_WEB_IDENTITY_TOKEN_FILE must be an absolute path, got \"\(file)\"") }
            guard role.hasPrefix("arn:") else { throw RuntimeError(.invalidArgument, "AWS_ROLE_ARN must be a role ARN (arn:aws:iam::<account>:role/<name>), got \"\(role)\"") }
            var endpoint = "https://sts.\(region.isEmpty ? "us-east-1" : region).amazonaws.com"
            if let configured = value("AWS_ENDPOINT_URL_STS") ?? value("AWS_ENDPOINT_URL") {
                endpoint = try DownloadSettings.baseURL(configured, name: "AWS_ENDPOINT_URL_STS")
            }
            var duration: Int? = nil
            if let raw = value("DOWNLOADER_STS_DURATION_SECONDS") {
                duration = try DownloadSettings.integer(raw, name: "DOWNLOADER_STS_DURATION_SECONDS", in: 1...43_200)
            }
            let session = value("AWS_ROLE_SESSION_NAME")
            if let session, !Self.isSessionName(session) {
                throw RuntimeError(.invalidArgument, "AWS_ROLE_SESSION_NAME must be 2 to 64 of letters, digits and =,.@-_, got \"\(session)\"")
            }
            return WebIdentitySettings(tokenFile: file, roleARN: role, sessionName: session, stsEndpoint: endpoint, durationSeconds: duration)
        }
    }

    /// STS's pattern for RoleSessionName: `[\w+=,.@-]{2,64}`.
    static func isSessionName(_ name: String) -> Bool {
        (2...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || "_+=,.@-".utf8.contains(byte)
            }
    }

    var description: String { "web identity \(roleARN) via \(stsEndpoint)" }
}

/// One `AssumeRoleWithWebIdentity` call. The call itself is unsigned: the token is the proof.
struct WebIdentityExchange: Sendable {
    let settings: WebIdentitySettings
    let region: String
    let http: CurlHTTPClient

    func fetch(isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> IssuedCredential {
        let token = try readToken()
        let session = settings.sessionName ?? "engine-runtime-\(Int(Date().timeIntervalSince1970))"
        var form = [
            "Action=AssumeRoleWithWebIdentity", "Version=2011-06-15",
            "RoleArn=" + CurlURL.percentEncoded(settings.roleARN, keepSlash: false),
            "RoleSessionName=" + CurlURL.percentEncoded(session, keepSlash: false),
            "WebIdentityToken=" + CurlURL.percentEncoded(token, keepSlash: false),
        ]
        if let duration = settings.durationSeconds { form.append("DurationSeconds=\(duration)") }
        let request = HTTPClientRequest(
            method: "POST", url: settings.stsEndpoint + "/", headers: ["Content-Type: application/x-www-form-urlencoded", "Accept: application/xml"],
            body: Array(form.joined(separator: "&").utf8), timeout: .seconds(15), idempotent: true, maxResponseBytes: 1 << 20)
        let response = try http.send(request, what: "asking STS (\(settings.stsEndpoint)) for \(settings.roleARN)", isCancelled: isCancelled)
        guard response.status == 200 else {
            let code = XMLText.first("Code", in: response.body) ?? "HTTP \(response.status)"
            let message = XMLText.first("Message", in: response.body).map { ": \($0)" } ?? ""
            // A refused token or role is the operator's to fix; an STS outage is upstream.
            let kind: ErrorKind = (400..<500).contains(response.status) ? .permissionDenied : .upstream
            throw RuntimeError(kind, "STS refused AssumeRoleWithWebIdentity for \(settings.roleARN) (\(code)\(message)); check the role's trust policy and the service account's eks.amazonaws.com/role-arn annotation")
        }
        guard let keyID = XMLText.first("AccessKeyId", in: response.body), let secret = XMLText.first("SecretAccessKey", in: response.body),
            let sessionToken = XMLText.first("SessionToken", in: response.body),
            let expiration = XMLText.first("Expiration", in: response.body).flatMap(Self.date)
        else { throw RuntimeError(.upstream, "STS's AssumeRoleWithWebIdentity answer has no complete Credentials element") }
        return IssuedCredential(
            authorization: .sigV4(AWSSigning(accessKey: keyID, secretKey: secret, sessionToken: sessionToken, region: region.isEmpty ? "us-east-1" : region)),
            expires: expiration)
    }

    private func readToken() throws(RuntimeError) -> String {
        guard let bytes = ProcFile.read(settings.tokenFile, limit: 64 << 10) else {
            throw RuntimeError(.permissionDenied, "cannot read the web identity token \(settings.tokenFile) (AWS_WEB_IDENTITY_TOKEN_FILE); is the projected service-account token mounted?")
        }
        guard bytes.count < 64 << 10 else { throw RuntimeError(.permissionDenied, "the web identity token \(settings.tokenFile) is larger than 64 KiB") }
        let token = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty else { throw RuntimeError(.permissionDenied, "the web identity token \(settings.tokenFile) is empty") }
        return token
    }

    /// STS's `Expiration`: ISO 8601 in UTC, with or without fractional seconds.
    static func date(_ text: String) -> Date? {
        (try? Date(text, strategy: .iso8601)) ?? (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
    }
}
