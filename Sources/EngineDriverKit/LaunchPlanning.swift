import PluginABI

/// `plan_launch` (ABI 1.3) for Swift drivers: the C entry decodes the spec, calls the
/// driver's planner, and writes the plan or the failure, catching everything.
extension DriverExport {
    public static func planLaunch(
        _ request: UnsafePointer<CChar>?, _ length: Int, _ response: UnsafePointer<ert_sink>?,
        _ error: UnsafeMutablePointer<ert_error>?, planner: (LaunchSpec) throws(DriverFailure) -> LaunchPlan
    ) -> ert_status {
        guard let request, let response else {
            error?.write(.invalidArgument("plan_launch: request or response is NULL"))
            return ERT_STATUS_INVALID_ARGUMENT
        }
        let bytes = request.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
        do throws(DriverFailure) {
            let spec: LaunchSpec
            do { spec = try JSONCoding.decode(LaunchSpec.self, from: bytes) } catch {
                throw DriverFailure.invalidArgument("plan_launch: the request is not a launch spec: \(error)")
            }
            let plan = try planner(spec)
            let encoded: [UInt8]
            do { encoded = try JSONCoding.encode(plan) } catch { throw DriverFailure.internalError("plan_launch: \(error)") }
            guard response.write(encoded) else { throw DriverFailure.internalError("the host refused the plan (too large)") }
            return ERT_STATUS_OK
        } catch let failure {
            error?.write(failure)
            return failure.status
        }
    }
}

extension LaunchSpec {
    /// Refuses a flag the plan sets itself, in either spelling (`--port 1`, `--port=1`), and
    /// any word that is not a flag: a positional would be read as the model.
    public func refusingOwnedFlags(_ owned: [String]) throws(DriverFailure) {
        for pair in args {
            guard let word = pair.first, word.hasPrefix("-"), word.count > 1 else {
                throw DriverFailure.invalidArgument("engine argument \"\(pair.first ?? "")\" is not a flag")
            }
            let flag = word.split(separator: "=", maxSplits: 1).first.map(String.init) ?? word
            if owned.contains(flag) {
                throw DriverFailure.invalidArgument("engine argument \(flag) is set by the runtime and cannot be given")
            }
        }
    }

    /// The program words: the operator's command, or the default.
    public func program(default defaultCommand: [String]) -> [String] {
        if let command, !command.isEmpty { return command }
        return defaultCommand
    }
}

extension LaunchSpec {
    /// The value of the last of `names` among the args (either spelling), nil when absent.
    public func flagValue(_ names: [String]) -> String? {
        var found: String?
        for pair in args {
            guard let word = pair.first else { continue }
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard let flag = parts.first, names.contains(flag) else { continue }
            found = parts.count > 1 ? parts[1] : (pair.count > 1 ? pair[1] : "")
        }
        return found
    }

    /// A parallelism flag as a positive integer, read the way AIBrix's controller reads it
    /// (Go `strings.TrimSpace`, empty means 1, `strconv.Atoi`), so both sides agree.
    public func parallelism(_ names: [String]) throws(DriverFailure) -> Int {
        guard let raw = flagValue(names) else { return 1 }
        let text = raw.trimmingWhitespace()
        if text.isEmpty { return 1 }
        guard text.allSatisfy(\.isASCIIDigit), let value = Int(text), value >= 1 else {
            throw DriverFailure.invalidArgument("\(names[0]) must be a positive integer, not \"\(raw)\"")
        }
        return value
    }

    /// An integer driver option from `config`, within `range`.
    public func configInteger(_ key: String, default value: Int, range: ClosedRange<Int>) throws(DriverFailure) -> Int {
        guard case .object(let object)? = config, let entry = object[key] else { return value }
        let integer: Int?
        switch entry {
        case .integer(let number): integer = Int(exactly: number)
        case .number(let number): integer = Int(exactly: number)
        default: integer = nil
        }
        guard let integer, range.contains(integer) else {
            throw DriverFailure.invalidArgument("option \(key) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return integer
    }

    /// A boolean driver option from `config`.
    public func configBool(_ key: String, default value: Bool) -> Bool {
        guard case .object(let object)? = config, case .bool(let flag)? = object[key] else { return value }
        return flag
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
