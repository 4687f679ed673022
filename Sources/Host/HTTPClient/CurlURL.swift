import CCurl
#if canImport(Glibc)
import Glibc
#endif

/// URL pieces and percent-encoding through libcurl's own URL API, so the host parses URLs the
/// way the transfers do.
enum CurlURL {
    /// The host of `url` (brackets kept for IPv6), without user info or port; "" when libcurl
    /// cannot parse it.
    static func host(of url: String) -> String {
        CurlGlobal.initializeOnce()
        guard let handle = curl_url() else { return "" }
        defer { curl_url_cleanup(handle) }
        guard curl_url_set(handle, CURLUPART_URL, url, UInt32(CURLU_NON_SUPPORT_SCHEME)) == CURLUE_OK else { return "" }
        var part: UnsafeMutablePointer<CChar>? = nil
        guard curl_url_get(handle, CURLUPART_HOST, &part, 0) == CURLUE_OK, let part else { return "" }
        defer { curl_free(part) }
        return String(cString: part)
    }

    /// `%XX` sequences decoded (libcurl leaves invalid ones as they are); the text itself when
    /// the result is not UTF-8.
    static func percentDecoded(_ text: String) -> String {
        var length: Int32 = 0
        // The handle argument is ignored by libcurl since 7.82.
        guard let decoded = curl_easy_unescape(nil, text, Int32(text.utf8.count), &length) else { return text }
        defer { curl_free(decoded) }
        let bytes = UnsafeRawBufferPointer(start: decoded, count: Int(length))
        return String(validating: bytes, as: UTF8.self) ?? text
    }

    /// RFC 3986 percent-encoding (unreserved characters kept, upper-case hex), as AWS
    /// Signature V4 wants it; with `keepSlash`, path separators stay.
    static func percentEncoded(_ text: String, keepSlash: Bool) -> String {
        if keepSlash {
            return text.split(separator: "/", omittingEmptySubsequences: false).map { percentEncoded(String($0), keepSlash: false) }
                .joined(separator: "/")
        }
        guard let encoded = curl_easy_escape(nil, text, Int32(text.utf8.count)) else { return text }
        defer { curl_free(encoded) }
        return String(cString: encoded)
    }
}
