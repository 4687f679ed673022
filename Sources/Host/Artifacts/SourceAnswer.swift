extension RuntimeError {
    /// Download errors another attempt may cure.
    var isTransient: Bool { kind == .upstream || kind == .timeout }

    /// What an HTTP error answer from a source means (`what` names the file or listing), and
    /// whether another attempt may cure it. An object store's error `<Code>` in `body` is kept.
    static func httpAnswer(_ status: Int, body: [UInt8], what: String) -> (error: RuntimeError, transient: Bool) {
        let code = XMLText.first("Code", in: body).map { " \($0)" } ?? ""
        let detail = "HTTP \(status)\(code)"
        switch status {
        case 401, 403: return (RuntimeError(.permissionDenied, "\(what): access denied (\(detail)); check the credentials"), false)
        case 404, 410: return (RuntimeError(.notFound, "\(what): not found (\(detail))"), false)
        case 412: return (RuntimeError(.conflict, "\(what) changed at the source during the download (\(detail)); download it again"), false)
        case 416: return (RuntimeError(.integrity, "\(what) is shorter at the source than listed (\(detail))"), false)
        case 408, 429, 500...599: return (RuntimeError(.upstream, "\(what): \(detail)"), true)
        default: return (RuntimeError(.upstream, "\(what): unexpected \(detail)"), false)
        }
    }
}
