/// Hosts a transfer may reach: exact names, or `.example.com` for the name and its
/// subdomains (`DOWNLOADER_ALLOWED_HOSTS`). Empty allows every host.
public struct HostAllowList: Sendable, Equatable {
    public var entries: [String]

    public init(_ entries: [String]) { self.entries = entries.map { $0.lowercased() } }

    public var isEmpty: Bool { entries.isEmpty }

    public func allows(host: String) -> Bool {
        guard !entries.isEmpty else { return true }
        let host = host.lowercased()
        return entries.contains { entry in entry.hasPrefix(".") ? host.hasSuffix(entry) || host == entry.dropFirst() : host == entry }
    }

    public func allows(url: String) -> Bool { allows(host: CurlURL.host(of: url)) }
}
