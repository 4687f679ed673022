/// How a download runs: parallelism, part sizes, filters, retries and credentials.
///
/// Built from the environment (`DOWNLOADER_*`, `HF_*`, `AWS_*`, `TOS_*`, `GCS_*`, the names
/// AIBrix uses), then narrowed per request by `download_extra_config` (model downloads) or
/// `credentials` (LoRA artifacts).
public struct DownloadSettings: Sendable, Equatable {
    /// Transfers in flight at once (files and ranged parts together).
    public var numThreads = 32
    /// Files at least this large are fetched in ranged parts.
    public var partThreshold: Int64 = 64 << 20
    public var partChunkSize: Int64 = 64 << 20
    /// File name suffixes to keep (`.safetensors`, `.json` ...); empty keeps everything.
    public var allowFileSuffixes: [String] = []
    public var forceDownload = false
    /// A transfer that moves no byte for this long is abandoned and retried.
    public var stallTimeoutSeconds = 30
    /// Attempts per part, the first included.
    public var maxAttempts = 5
    /// Flush every file to disk before the directory is published (`DOWNLOADER_FSYNC`), so a
    /// power loss cannot leave a published model with missing pages. Off suits volumes that do
    /// not outlive the pod (emptyDir).
    public var syncBeforePublish = true
    /// Hosts sources may be fetched from (`DOWNLOADER_ALLOWED_HOSTS`: `name`, or `.suffix` for a
    /// domain and its subdomains); empty allows any. Guards against requests that point the
    /// sidecar at internal services.
    public var allowedHosts: [String] = []
    public var huggingFace = HuggingFaceSettings()
    public var s3 = ObjectStoreCredentials(region: "us-east-1")
    public var tos = ObjectStoreCredentials(region: "")
    public var gcs = ObjectStoreCredentials(endpoint: "https://storage.googleapis.com", region: "auto")

    public init() {}

    public struct HuggingFaceSettings: Sendable, Equatable {
        public var endpoint = "https://huggingface.co"
        public var token: String? = nil
        public var revision: String? = nil
    }

    public struct ObjectStoreCredentials: Sendable, Equatable {
        public var accessKey: String? = nil
        public var secretKey: String? = nil
        public var sessionToken: String? = nil
        /// Base URL of the service; nil means the flavor's public endpoint.
        public var endpoint: String? = nil
        public var region: String
        /// `auto` (path style for IP addresses and localhost, virtual-host style otherwise),
        /// `path` or `virtual`.
        public var addressingStyle = "auto"
        /// S3: IRSA, used when no keys are given.
        var webIdentity: WebIdentitySettings? = nil
        /// GCS: a service-account key, used when no HMAC keys are given.
        var googleKey: GoogleKeySource? = nil
        /// GCS: the metadata server (`GCE_METADATA_HOST`, or Google's own on Google's cloud),
        /// used when there is neither an HMAC key nor a service-account key.
        var metadataHost: String? = nil
    }

    /// Where a GCS service-account key comes from.
    enum GoogleKeySource: Sendable, Equatable {
        /// `GOOGLE_APPLICATION_CREDENTIALS`, read at each use: a mounted secret may be rotated.
        case file(String)
        /// A request's `gcp_service_account_json`.
        case inline(String)

        /// Whether the operator gave it (its token endpoint is then trusted).
        var isOperators: Bool {
            if case .file = self { true } else { false }
        }

        func bytes() throws(RuntimeError) -> [UInt8] {
            switch self {
            case .inline(let json): return Array(json.utf8)
            case .file(let path):
                guard let bytes = ProcFile.read(path, limit: 64 << 10), !bytes.isEmpty else {
                    throw RuntimeError(.permissionDenied, "cannot read the service-account key \(path) (GOOGLE_APPLICATION_CREDENTIALS)")
                }
                return bytes
            }
        }
    }

    /// Keys `download_extra_config` accepts (AIBrix's names).
    public static let extraConfigKeys: Set<String> = [
        "num_threads", "part_threshold", "part_chunksize", "allow_file_suffix", "force_download",
        "hf_token", "hf_endpoint", "hf_revision", "ak", "sk", "session_token", "endpoint", "region",
        "addressing_style", "max_io_queue", "io_chunksize",
    ]

    /// The settings the environment describes. Bad values are errors, not defaults.
    public static func fromEnvironment(_ environment: [String: String]) throws(RuntimeError) -> DownloadSettings {
        var settings = DownloadSettings()
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingWhitespace(), !raw.isEmpty else { return nil }
            return raw
        }
        if let raw = value("DOWNLOADER_NUM_THREADS") { settings.numThreads = try integer(raw, name: "DOWNLOADER_NUM_THREADS", in: 1...256) }
        if let raw = value("DOWNLOADER_PART_THRESHOLD") {
            settings.partThreshold = Int64(try integer(raw, name: "DOWNLOADER_PART_THRESHOLD", in: 1...(1 << 40)))
        }
        if let raw = value("DOWNLOADER_PART_CHUNKSIZE") {
            settings.partChunkSize = Int64(try integer(raw, name: "DOWNLOADER_PART_CHUNKSIZE", in: (64 << 10)...(1 << 34)))
        }
        if let raw = value("DOWNLOADER_ALLOW_FILE_SUFFIX") { settings.allowFileSuffixes = suffixList(raw) }
        if let raw = value("DOWNLOADER_FORCE_DOWNLOAD") { settings.forceDownload = try boolean(raw, name: "DOWNLOADER_FORCE_DOWNLOAD") }
        if let raw = value("DOWNLOADER_STALL_TIMEOUT") {
            settings.stallTimeoutSeconds = try integer(raw, name: "DOWNLOADER_STALL_TIMEOUT", in: 1...3600)
        }
        if let raw = value("DOWNLOADER_FSYNC") { settings.syncBeforePublish = try boolean(raw, name: "DOWNLOADER_FSYNC") }
        if let raw = value("DOWNLOADER_MAX_ATTEMPTS") { settings.maxAttempts = try integer(raw, name: "DOWNLOADER_MAX_ATTEMPTS", in: 1...20) }

        if let raw = value("DOWNLOADER_ALLOWED_HOSTS") { settings.allowedHosts = suffixList(raw).map { $0.lowercased() } }
        if let endpoint = value("HF_ENDPOINT") { settings.huggingFace.endpoint = try baseURL(endpoint, name: "HF_ENDPOINT") }
        settings.huggingFace.token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        settings.huggingFace.revision = value("HF_REVISION")

        settings.s3.accessKey = value("AWS_ACCESS_KEY_ID")
        settings.s3.secretKey = value("AWS_SECRET_ACCESS_KEY")
        settings.s3.sessionToken = value("AWS_SESSION_TOKEN")
        if let endpoint = value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL") {
            settings.s3.endpoint = try baseURL(endpoint, name: "AWS_ENDPOINT_URL")
        }
        settings.s3.region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        settings.s3.webIdentity = try WebIdentitySettings.fromEnvironment(value, region: settings.s3.region)
        if let style = value("DOWNLOADER_S3_ADDRESSING_STYLE") {
            settings.s3.addressingStyle = try addressingStyle(style)
            settings.tos.addressingStyle = settings.s3.addressingStyle
            settings.gcs.addressingStyle = settings.s3.addressingStyle
        }

        settings.tos.accessKey = value("TOS_ACCESS_KEY")
        settings.tos.secretKey = value("TOS_SECRET_KEY")
        settings.tos.sessionToken = value("TOS_SESSION_TOKEN")
        if let endpoint = value("TOS_ENDPOINT") { settings.tos.endpoint = try baseURL(endpoint, name: "TOS_ENDPOINT") }
        settings.tos.region = value("TOS_REGION") ?? ""

        settings.gcs.accessKey = value("GCS_ACCESS_KEY_ID")
        settings.gcs.secretKey = value("GCS_SECRET_ACCESS_KEY")
        if let endpoint = value("GCS_ENDPOINT") { settings.gcs.endpoint = try baseURL(endpoint, name: "GCS_ENDPOINT") }
        if let path = value("GOOGLE_APPLICATION_CREDENTIALS") {
            guard path.hasPrefix("/") else {
                throw RuntimeError(.invalidArgument, "GOOGLE_APPLICATION_CREDENTIALS must be an absolute path, got \"\(path)\"")
            }
            settings.gcs.googleKey = .file(path)
        }
        if let host = value("GCE_METADATA_HOST") {
            guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "@") }) else {
                throw RuntimeError(.invalidArgument, "GCE_METADATA_HOST must be a host or host:port, got \"\(host)\"")
            }
            settings.gcs.metadataHost = host
        } else if GoogleMetadataServer.isOnGoogleCloud() {
            settings.gcs.metadataHost = "metadata.google.internal"
        }
        return settings
    }

    /// These settings narrowed by a request's `download_extra_config`. `force_download` is
    /// OR-ed in: a request can turn it on, not off (the operator's setting wins).
    public func applying(extraConfig: [String: JSONValue], to flavor: ArtifactSource) throws(RuntimeError) -> DownloadSettings {
        var settings = self
        for (key, value) in extraConfig.sorted(by: { $0.key < $1.key }) {
            guard Self.extraConfigKeys.contains(key) else {
                throw RuntimeError(
                    .invalidArgument,
                    "unknown download_extra_config key \"\(key)\"; known keys: \(Self.extraConfigKeys.sorted().joined(separator: ", "))")
            }
            let text: String
            switch value {
            case .string(let string): text = string
            case .integer(let number): text = String(number)
            case .number(let number): text = String(number)
            case .bool(let flag): text = flag ? "true" : "false"
            case .array(let items):
                guard key == "allow_file_suffix" else { throw RuntimeError(.invalidArgument, "download_extra_config \(key) must not be a list") }
                text = items.compactMap { if case .string(let s) = $0 { s } else { nil } }.joined(separator: ",")
            default: throw RuntimeError(.invalidArgument, "download_extra_config \(key) must be a string, number or boolean")
            }
            let name = "download_extra_config \(key)"
            switch key {
            case "num_threads": settings.numThreads = try Self.integer(text, name: name, in: 1...256)
            case "part_threshold": settings.partThreshold = Int64(try Self.integer(text, name: name, in: 1...(1 << 40)))
            case "part_chunksize": settings.partChunkSize = Int64(try Self.integer(text, name: name, in: (64 << 10)...(1 << 34)))
            case "allow_file_suffix": settings.allowFileSuffixes = Self.suffixList(text)
            case "force_download":
                let requested = try Self.boolean(text, name: name)
                settings.forceDownload = settings.forceDownload || requested
            case "hf_token": settings.huggingFace.token = text
            case "hf_endpoint": settings.huggingFace.endpoint = try Self.baseURL(text, name: name)
            case "hf_revision": settings.huggingFace.revision = text
            case "max_io_queue", "io_chunksize": break  // boto3 tuning with no equivalent here
            default: try settings.setObjectStore(key: key, value: text, for: flavor)
            }
        }
        return settings
    }

    /// Keys `credentials` (and AIBrix's `additional_config`) may carry.
    public static let credentialKeys: Set<String> = [
        "aws_access_key_id", "TOS_ACCESS_KEY", "gcs_access_key_id", "access_key", "ak", "aws_secret_access_key", "TOS_SECRET_KEY",
        "gcs_secret_access_key", "secret_key", "sk", "aws_session_token", "TOS_SESSION_KEY", "TOS_SESSION_TOKEN", "session_token",
        "aws_region", "region", "tos_region", "aws_endpoint_url", "endpoint", "tos_endpoint", "huggingface_token", "hf_token",
        "hf_endpoint", "revision", "hf_revision", "gcp_service_account_json",
    ]

    /// These settings with a LoRA request's `credentials` (AIBrix's keys per scheme).
    public func applying(credentials: [String: String], to source: ArtifactSource) throws(RuntimeError) -> DownloadSettings {
        var settings = self
        for (key, value) in credentials.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "aws_access_key_id", "TOS_ACCESS_KEY", "gcs_access_key_id", "access_key", "ak":
                try settings.setObjectStore(key: "ak", value: value, for: source)
            case "aws_secret_access_key", "TOS_SECRET_KEY", "gcs_secret_access_key", "secret_key", "sk":
                try settings.setObjectStore(key: "sk", value: value, for: source)
            case "aws_session_token", "TOS_SESSION_KEY", "TOS_SESSION_TOKEN", "session_token":
                try settings.setObjectStore(key: "session_token", value: value, for: source)
            case "aws_region", "region", "tos_region":
                try settings.setObjectStore(key: "region", value: value, for: source)
            case "aws_endpoint_url", "endpoint", "tos_endpoint":
                try settings.setObjectStore(key: "endpoint", value: value, for: source)
            case "huggingface_token", "hf_token": settings.huggingFace.token = value
            case "hf_endpoint": settings.huggingFace.endpoint = try Self.baseURL(value, name: "credentials hf_endpoint")
            case "revision", "hf_revision": settings.huggingFace.revision = value
            case "gcp_service_account_json":
                guard case .objectStore(let location) = source, location.flavor == .gcs else {
                    throw RuntimeError(.invalidArgument, "gcp_service_account_json applies to gcs:// sources")
                }
                // Checked now, so a bad key is the request's 400, not a failed download later.
                _ = try GoogleServiceAccountKey(json: Array(value.utf8))
                // The request's own key wins over HMAC keys the environment gives.
                settings.gcs.googleKey = .inline(value)
                settings.gcs.accessKey = nil
                settings.gcs.secretKey = nil
            default:
                throw RuntimeError(.invalidArgument, "unknown credentials key \"\(key)\"")
            }
        }
        return settings
    }

    private mutating func setObjectStore(key: String, value: String, for source: ArtifactSource) throws(RuntimeError) {
        guard case .objectStore(let location) = source else {
            throw RuntimeError(.invalidArgument, "\"\(key)\" applies to object stores, not to \(source.kind) sources")
        }
        var store = objectStore(location.flavor)
        switch key {
        case "ak": store.accessKey = value
        case "sk": store.secretKey = value
        case "session_token": store.sessionToken = value
        case "region": store.region = value
        case "endpoint": store.endpoint = try Self.baseURL(value, name: "endpoint")
        case "addressing_style": store.addressingStyle = try Self.addressingStyle(value)
        default: break
        }
        switch location.flavor {
        case .s3: s3 = store
        case .tos: tos = store
        case .gcs: gcs = store
        }
    }

    func objectStore(_ flavor: ArtifactSource.ObjectStoreFlavor) -> ObjectStoreCredentials {
        switch flavor {
        case .s3: s3
        case .tos: tos
        case .gcs: gcs
        }
    }

    /// Refuses `url` when an allow-list is set and its host is not on it.
    func checkHost(of url: String) throws(RuntimeError) {
        guard !hostAllowList.allows(url: url) else { return }
        throw RuntimeError(.permissionDenied, "host \"\(CurlURL.host(of: url).lowercased())\" is not in DOWNLOADER_ALLOWED_HOSTS")
    }

    /// `allowedHosts` as the HTTP client checks it on every connection, redirects included.
    var hostAllowList: HostAllowList { HostAllowList(allowedHosts) }

    /// Whether `relativePath` passes the suffix filter: its name ends with one of the suffixes.
    public func keeps(_ relativePath: String) -> Bool {
        allowFileSuffixes.isEmpty || allowFileSuffixes.contains { relativePath.hasSuffix($0) }
    }

    static func suffixList(_ raw: String) -> [String] {
        raw.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    static func integer(_ raw: String, name: String, in range: ClosedRange<Int>) throws(RuntimeError) -> Int {
        guard let value = Int(raw.trimmingWhitespace()), range.contains(value) else {
            throw RuntimeError(.invalidArgument, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), got \"\(raw)\"")
        }
        return value
    }

    static func boolean(_ raw: String, name: String) throws(RuntimeError) -> Bool {
        switch raw.trimmingWhitespace().lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw RuntimeError(.invalidArgument, "\(name) must be true or false, got \"\(raw)\"")
        }
    }

    static func baseURL(_ raw: String, name: String) throws(RuntimeError) -> String {
        var url = raw.trimmingWhitespace()
        if !url.contains("://") { url = "https://" + url }
        guard url.hasPrefix("http://") || url.hasPrefix("https://"), !url.contains("?"),
            !url.dropFirst(8).isEmpty, !url.utf8.contains(where: { $0 <= 0x20 })
        else { throw RuntimeError(.invalidArgument, "\(name) must be an http(s) base URL, got \"\(raw)\"") }
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    static func addressingStyle(_ raw: String) throws(RuntimeError) -> String {
        let style = raw.lowercased()
        guard ["auto", "path", "virtual"].contains(style) else {
            throw RuntimeError(.invalidArgument, "the S3 addressing style must be auto, path or virtual, got \"\(raw)\"")
        }
        return style
    }
}
