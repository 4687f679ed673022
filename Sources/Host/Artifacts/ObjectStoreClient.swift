/// Listing and metadata calls to an S3-compatible object store (AWS S3, TOS's S3 endpoint,
/// GCS's XML API), signed with SigV4 by libcurl or carrying an OAuth token, as `source`
/// says per request. Blocking: run on a worker thread.
struct ObjectStoreClient: Sendable {
    let flavor: ArtifactSource.ObjectStoreFlavor
    let credentials: DownloadSettings.ObjectStoreCredentials
    let source: any CredentialSource
    let http: CurlHTTPClient
    /// Per-request timeout of listing and HEAD calls.
    var timeoutSeconds: Int64 = 30

    struct Object: Sendable, Equatable {
        var key: String
        var size: Int64
        var etag: String?
    }

    init(
        flavor: ArtifactSource.ObjectStoreFlavor, credentials: DownloadSettings.ObjectStoreCredentials, sources: CredentialSources,
        allowedHosts: HostAllowList, http: CurlHTTPClient
    ) throws(RuntimeError) {
        self.flavor = flavor
        self.credentials = credentials
        self.http = http
        if flavor == .tos, credentials.endpoint == nil {
            throw RuntimeError(.invalidArgument, "tos:// needs TOS_ENDPOINT (the S3-compatible endpoint, e.g. https://tos-s3-cn-beijing.volces.com)")
        }
        source = try sources.source(for: flavor, credentials, allowedHosts: allowedHosts)
    }

    var access: TransferAccess { TransferAccess(credentials: source) }

    /// The service's base URL, without a trailing slash.
    private var endpoint: String {
        if let endpoint = credentials.endpoint { return endpoint }
        switch flavor {
        case .s3: return credentials.region == "us-east-1" || credentials.region.isEmpty
            ? "https://s3.amazonaws.com" : "https://s3.\(credentials.region).amazonaws.com"
        case .gcs: return "https://storage.googleapis.com"
        case .tos: return "https://tos-s3-\(credentials.region).volces.com"
        }
    }

    private func usesVirtualHost(_ bucket: String) -> Bool {
        switch credentials.addressingStyle {
        case "path": return false
        case "virtual": return true
        default:
            // Dots break TLS for virtual hosts; IP addresses and localhost have no bucket DNS.
            let host = CurlURL.host(of: endpoint)
            let isIP = host.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E } || host.hasPrefix("[")
            if bucket.contains(".") || isIP || host == "localhost" { return false }
            return credentials.endpoint == nil || flavor == .tos
        }
    }

    /// The URL of `key` in `bucket` (the bucket's root when `key` is empty), plus a query.
    func url(bucket: String, key: String, query: String = "") -> String {
        let path = CurlURL.percentEncoded(key, keepSlash: true)
        var base: String
        if usesVirtualHost(bucket) {
            let parts = endpoint.split(separator: "://", maxSplits: 1)
            base = "\(parts[0])://\(bucket).\(parts[1])/\(path)"
        } else {
            base = "\(endpoint)/\(bucket)/\(path)"
        }
        if !query.isEmpty { base += "?" + query }
        return base
    }

    /// Every object under `prefix`, following continuation tokens (1,000 keys per page).
    func list(bucket: String, prefix: String, isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> [Object] {
        var objects: [Object] = []
        var token: String? = nil
        repeat {
            // Parameters sorted by name: SigV4's canonical query string wants them that way.
            var query: [String] = []
            if let token { query.append("continuation-token=" + CurlURL.percentEncoded(token, keepSlash: false)) }
            query.append("list-type=2")
            if !prefix.isEmpty { query.append("prefix=" + CurlURL.percentEncoded(prefix, keepSlash: false)) }
            let response = try send("GET", url(bucket: bucket, key: "", query: query.joined(separator: "&")), what: "listing s3://\(bucket)/\(prefix)", isCancelled: isCancelled)
            guard response.status == 200 else {
                throw RuntimeError.httpAnswer(response.status, body: response.body, what: "listing \(flavor.rawValue)://\(bucket)/\(prefix)").error
            }
            let page = try ListBucketResult.parse(response.body)
            objects += page.objects
            token = page.isTruncated ? page.nextToken : nil
            if page.isTruncated, token == nil {
                throw RuntimeError(.upstream, "the object store said the listing is truncated but gave no continuation token")
            }
        } while token != nil
        return objects
    }

    /// The object's size and ETag, or nil when there is no such key.
    func head(bucket: String, key: String, isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError) -> Object? {
        let response = try send("HEAD", url(bucket: bucket, key: key), what: "HEAD \(key)", isCancelled: isCancelled)
        if response.status == 404 { return nil }
        guard response.status == 200 else {
            throw RuntimeError.httpAnswer(response.status, body: response.body, what: "\(flavor.rawValue)://\(bucket)/\(key)").error
        }
        guard let length = response.headers["content-length"].flatMap({ Int64($0) }) else {
            throw RuntimeError(.upstream, "the object store gave no Content-Length for \(key)")
        }
        return Object(key: key, size: length, etag: response.headers["etag"])
    }

    private func send(_ method: String, _ url: String, what: String, isCancelled: @escaping @Sendable () -> Bool) throws(RuntimeError)
        -> HTTPClientResponse
    {
        try http.send(method, url, access: access, timeoutSeconds: timeoutSeconds, maxResponseBytes: 8 << 20, what: what, isCancelled: isCancelled)
    }
}

/// A ListObjectsV2 answer. S3's listing XML is flat and fixed; reading the few elements we
/// need keeps an XML library (and Foundation with libxml2) out of the host.
struct ListBucketResult {
    var objects: [ObjectStoreClient.Object]
    var isTruncated: Bool
    var nextToken: String?

    static func parse(_ body: [UInt8]) throws(RuntimeError) -> ListBucketResult {
        let text = String(decoding: body, as: UTF8.self)
        guard text.contains("<ListBucketResult") else {
            throw RuntimeError(.upstream, "the object store's listing is not a ListBucketResult document")
        }
        var objects: [ObjectStoreClient.Object] = []
        var rest = Substring(text)
        while let open = rest.firstRange(of: "<Contents>") {
            guard let close = rest[open.upperBound...].firstRange(of: "</Contents>") else { break }
            let entry = rest[open.upperBound..<close.lowerBound]
            guard let key = XMLText.first("Key", in: entry), let size = XMLText.first("Size", in: entry).flatMap({ Int64($0) }) else {
                throw RuntimeError(.upstream, "a listing entry has no Key or Size")
            }
            objects.append(.init(key: key, size: size, etag: XMLText.first("ETag", in: entry)))
            rest = rest[close.upperBound...]
        }
        let truncated = XMLText.first("IsTruncated", in: Substring(text)) == "true"
        return ListBucketResult(objects: objects, isTruncated: truncated, nextToken: XMLText.first("NextContinuationToken", in: Substring(text)))
    }
}

/// The text of simple XML elements, entities decoded.
enum XMLText {
    static func first(_ element: String, in body: [UInt8]) -> String? {
        first(element, in: Substring(String(decoding: body.prefix(64 << 10), as: UTF8.self)))
    }

    static func first(_ element: String, in text: Substring) -> String? {
        guard let open = text.firstRange(of: "<\(element)>"),
            let close = text[open.upperBound...].firstRange(of: "</\(element)>")
        else { return nil }
        return decodeEntities(text[open.upperBound..<close.lowerBound])
    }

    static func decodeEntities(_ text: Substring) -> String {
        guard text.contains("&") else { return String(text) }
        var out = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "&", let semicolon = text[index...].firstIndex(of: ";"), text.distance(from: index, to: semicolon) <= 10 {
                let name = text[text.index(after: index)..<semicolon]
                var scalar: Unicode.Scalar? = nil
                switch name {
                case "amp": scalar = "&"
                case "lt": scalar = "<"
                case "gt": scalar = ">"
                case "quot": scalar = "\""
                case "apos": scalar = "'"
                default:
                    if name.hasPrefix("#x") { scalar = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init) }
                    else if name.hasPrefix("#") { scalar = UInt32(name.dropFirst(), radix: 10).flatMap(Unicode.Scalar.init) }
                }
                if let scalar {
                    out.unicodeScalars.append(scalar)
                    index = text.index(after: semicolon)
                    continue
                }
            }
            out.append(character)
            index = text.index(after: index)
        }
        return out
    }
}
