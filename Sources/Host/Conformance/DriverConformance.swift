import Logging
import NIOCore
import NIOPosix

/// One verdict of a conformance run.
public struct ConformanceCheck: Codable, Sendable, Equatable {
    public var name: String
    public var passed: Bool
    public var detail: String

    public init(name: String, passed: Bool, detail: String) {
        self.name = name
        self.passed = passed
        self.detail = detail
    }
}

/// The verdicts for one driver file; `passed` only when every check passed.
public struct ConformanceReport: Codable, Sendable {
    public var path: String
    public var driver: String?
    public var passed: Bool { checks.allSatisfy(\.passed) }
    public var checks: [ConformanceCheck] = []
    /// The engine the instances talked to: "stand-in", or the live engine's URL.
    public var engine: String?
    /// Operations not run (mutating ones against a live engine without --allow-mutations).
    public var skipped: [String] = []
    /// Called when a check starts (its name) and when one is recorded; lets a parent process
    /// say which check was running if the driver crashes the checker.
    var onStart: (@Sendable (String) -> Void)?
    var onRecord: (@Sendable (ConformanceCheck) -> Void)?

    /// Human-readable lines: one per check, then the verdict.
    public var text: String {
        var lines = checks.map { "\($0.passed ? "PASS" : "FAIL")  \($0.name)" + ($0.detail.isEmpty ? "" : ": \($0.detail)") }
        let failed = checks.filter { !$0.passed }.count
        lines.append(
            passed
                ? "\(path): conforms to driver ABI 1 (\(checks.count) checks passed)"
                : "\(path): does NOT conform (\(failed) of \(checks.count) checks failed)")
        return lines.joined(separator: "\n")
    }

    private enum CodingKeys: String, CodingKey { case path, driver, passed, engine, skipped, checks }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encodeIfPresent(driver, forKey: .driver)
        try container.encode(passed, forKey: .passed)
        try container.encodeIfPresent(engine, forKey: .engine)
        try container.encode(skipped, forKey: .skipped)
        try container.encode(checks, forKey: .checks)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        path = try container.decode(String.self, forKey: .path)
        driver = try container.decodeIfPresent(String.self, forKey: .driver)
        engine = try container.decodeIfPresent(String.self, forKey: .engine)
        skipped = try container.decodeIfPresent([String].self, forKey: .skipped) ?? []
        checks = try container.decode([ConformanceCheck].self, forKey: .checks)
    }

    public init(path: String, driver: String? = nil, checks: [ConformanceCheck] = []) {
        self.path = path
        self.driver = driver
        self.checks = checks
    }

    mutating func record(_ name: String, _ passed: Bool, _ detail: String = "") {
        let check = ConformanceCheck(name: name, passed: passed, detail: detail)
        checks.append(check)
        onRecord?(check)
    }

    func starting(_ name: String) { onStart?(name) }
}

/// Which engine `drivers check` points the driver's instances at.
public enum ConformanceEngine: Sendable {
    /// A loopback stand-in that answers every request with success, then a closed port.
    case standIn
    /// A live engine; mutating operations only when allowed.
    case endpoint(String, allowMutations: Bool)
}

/// The conformance run behind `engine-runtime drivers check`: what a vendor runs before
/// shipping a driver. It exercises the handshake, the descriptor, instance creation, every
/// operation the driver declares with a valid, a malformed and a non-object request, and
/// every extension operation: against a stand-in engine that answers every request with
/// success (each operation's success path), then with the engine down (each failure path);
/// or against a live engine, read-only unless mutations are allowed.
public enum DriverConformance {
    /// Requests that are valid in shape for each operation.
    static func validRequest(for operation: DriverOperation) -> String {
        switch operation {
        case .loadLoRAAdapter: #"{"lora_name":"conformance-check","lora_path":"/nonexistent/conformance-check"}"#
        case .unloadLoRAAdapter: #"{"lora_name":"conformance-check"}"#
        case .loadModel: #"{"model":"conformance-check","model_path":"/nonexistent/conformance-check"}"#
        case .unloadModel: #"{"model":"conformance-check"}"#
        case .sleep: #"{"level":1}"#
        default: "{}"
        }
    }

    static let malformedRequest = #"{"lora_name": "conformance-check", "#
    /// Valid JSON that is not an object: every operation takes an object.
    static let nonObjectRequest = #"["conformance-check"]"#

    /// Statuses a correct driver may answer when its engine cannot be reached.
    static let acceptableStatuses: Set<ErrorKind> = [.invalidArgument, .notFound, .unsupported, .unavailable, .timeout, .upstream]

    /// With `isolation`, the driver is loaded and served by a host process of its own, as
    /// `serve --isolated-drivers` runs it.
    public static func run(
        path: String, engine: ConformanceEngine = .standIn, timeout: TimeAmount = .seconds(10), logger: Logger,
        isolation: DriverIsolationSettings? = nil,
        onStart: (@Sendable (String) -> Void)? = nil, onRecord: (@Sendable (ConformanceCheck) -> Void)? = nil
    ) async -> ConformanceReport {
        var report = ConformanceReport(path: path)
        report.onStart = onStart
        report.onRecord = onRecord
        report.starting("load and handshake")
        let loaded: Result<LoadedDriver, DriverLoadError>
        if let isolation {
            loaded = DriverHostProcess.launch(path: path, settings: isolation, httpClient: CurlHTTPClient(logger: logger), logger: logger)
                .map { LoadedDriver(manifest: $0.1, host: $0.0) }
        } else {
            loaded = DriverLoader.load(path: path).mapError(\.error)
        }
        let driver: LoadedDriver
        switch loaded {
        case .failure(let error):
            report.record("load and handshake", false, error.description)
            return report
        case .success(let loaded):
            driver = loaded
        }
        defer { driver.isolatedHost?.stop() }
        report.driver = driver.name
        let served = driver.isolatedHost.map { " (in host process \($0.status.pid ?? 0))" } ?? ""
        report.record("load and handshake", true, "driver \(driver.name) \(driver.version), ABI \(driver.abiMajor).\(driver.abiMinor)\(served)")
        report.record("descriptor: name, version, engine kinds", !driver.version.isEmpty, driver.version.isEmpty ? "version is empty" : "engine kinds: \(driver.engineKinds.joined(separator: ", "))")
        if let schema = driver.configSchemaJSON {
            let valid = JSONCoding.isValidJSON(Array(schema.utf8))
            report.record("descriptor: config schema is JSON", valid, valid ? "" : "config_schema_json is not valid JSON")
        }
        // A verdict per rule: a rule that loads can still never match, or feed a consumer the
        // wrong type. (A rule that does not parse stops the load above, naming its index.)
        if driver.metricRules.isEmpty { report.record("metric rules", true, "none declared") }
        for (index, rule) in driver.metricRules.enumerated() {
            let warnings = rule.warnings
            report.record(
                "metric rule #\(index) \(rule.sourceName) -> \(rule.standardName)", warnings.isEmpty,
                warnings.isEmpty ? "\(rule.sourceType.name), \(rule.aggregate)" : warnings.joined(separator: "; "))
        }
        report.record(
            "extension declarations", true,
            driver.extensionOperations.isEmpty ? "none declared" : driver.extensionOperations.map(\.name).joined(separator: ", "))

        let pool = WorkerPool(threads: 4)
        if driver.canLaunch { await checkLaunchPlan(driver: driver, pool: pool, into: &report) }
        await exerciseInstances(driver: driver, engine: engine, timeout: timeout, pool: pool, logger: logger, into: &report)
        await pool.shutdown()
        return report
    }

    /// The stand-in engine first (every operation's success path, malformed and non-object
    /// requests, extensions), then the same valid calls with the engine down; or a live engine,
    /// read-only unless mutations are allowed.
    private static func exerciseInstances(
        driver: LoadedDriver, engine: ConformanceEngine, timeout: TimeAmount, pool: WorkerPool, logger: Logger,
        into report: inout ConformanceReport
    ) async {
        switch engine {
        case .endpoint(let url, let allowMutations):
            report.engine = url
            let mutating = driver.supportedOperations.filter(\.isMutating).map(\.rawValue)
                + driver.extensionOperations.filter(\.isMutating).map { "extension \($0.name)" }
            if !allowMutations, !mutating.isEmpty {
                report.skipped = mutating
                report.record(
                    "mutating operations", true,
                    "not run against the live engine at \(url): \(mutating.joined(separator: ", ")) (--allow-mutations runs them)")
            } else if !mutating.isEmpty {
                report.record("mutating operations", true, "run against the live engine at \(url) (--allow-mutations)")
            }
            await exercise(driver: driver, endpoint: url, phase: .live(allowMutations: allowMutations), timeout: timeout, pool: pool, logger: logger, into: &report)
        case .standIn:
            report.engine = "stand-in"
            let before = report
            let after = await StandInEngine.with(logger: logger) { endpoint, log in
                var report = before
                await exercise(driver: driver, endpoint: endpoint, phase: .standIn, timeout: timeout, pool: pool, logger: logger, into: &report)
                let asked = Array(Set(log.all)).sorted()
                report.record("stand-in engine", true, asked.isEmpty ? "the driver made no engine request" : "the driver asked: \(asked.joined(separator: ", "))")
                return report
            }
            if let after { report = after } else { report.record("stand-in engine", false, "could not start a loopback server") }
            await exercise(driver: driver, endpoint: "http://127.0.0.1:9", phase: .engineDown, timeout: timeout, pool: pool, logger: logger, into: &report)
        }
    }

    /// Which engine an instance of the run talks to.
    enum Phase {
        /// The loopback stand-in: every engine request succeeds.
        case standIn
        /// A closed loopback port: every engine request fails to connect.
        case engineDown
        case live(allowMutations: Bool)

        var suffix: String { if case .engineDown = self { " (engine down)" } else { "" } }
        var isFirst: Bool { if case .engineDown = self { false } else { true } }
    }

    private static func exercise(
        driver: LoadedDriver, endpoint: String, phase: Phase, timeout: TimeAmount, pool: WorkerPool, logger: Logger,
        into report: inout ConformanceReport
    ) async {
        let client = CurlHTTPClient(logger: logger)
        let configuration = InstanceConfiguration(
            name: "conformance", engineKind: driver.engineKinds[0], endpoint: endpoint, engineVersion: nil)
        let instance: DriverInstance
        let create = "create_instance" + phase.suffix
        report.starting(create)
        do {
            instance = try await DriverInstance.create(
                driver: driver, configuration: configuration, pool: pool, httpClient: client, logger: logger)
            report.record(create, true)
        } catch {
            report.record(create, false, error.description)
            return
        }
        let readOnly: Bool = if case .live(let allowed) = phase { !allowed } else { false }
        for operation in driver.supportedOperations where !(readOnly && operation.isMutating) {
            await checkOperation(operation, on: instance, phase: phase, timeout: timeout, into: &report)
        }
        if phase.isFirst {
            for operation in driver.extensionOperations where !(readOnly && operation.isMutating) {
                await checkExtension(operation, on: instance, timeout: timeout, into: &report)
            }
            if driver.capabilities.contains(.multiInstance) {
                await checkSecondInstance(driver: driver, configuration: configuration, pool: pool, client: client, logger: logger, into: &report)
            }
        }
        let destroy = "destroy_instance" + phase.suffix
        report.starting(destroy)
        await instance.shutdown()
        report.record(destroy, true)
    }

    private static func checkOperation(
        _ operation: DriverOperation, on instance: DriverInstance, phase: Phase, timeout: TimeAmount, into report: inout ConformanceReport
    ) async {
        let name = operation.rawValue
        let valid = "\(name) (valid request)" + phase.suffix
        report.starting(valid)
        let exits = instance.driver.isolatedHost?.exitCount
        do {
            let answer = try await instance.invoke(operation, request: Array(validRequest(for: operation).utf8), timeout: timeout)
            let problem = answerProblem(operation, answer)
            report.record(valid, problem == nil, problem ?? "answered OK")
        } catch {
            let crashed = hostEnded(instance, since: exits)
            if crashed {
                report.record(valid, false, "the driver ended its host process: \(error.message)")
            } else {
                let passed: Bool
                switch phase {
                case .standIn:
                    // The stand-in answers every engine request with success: "the engine cannot
                    // do this" is fair, and so is a refusal of an answer whose shape the driver did
                    // not expect (the stand-in's answers are generic); a timeout, an internal error,
                    // or "unreachable" from an engine that answers are not.
                    passed = [.unsupported, .upstream, .invalidArgument, .notFound, .conflict].contains(error.kind) && !error.isContractViolation
                    let partial = error.kind == .unsupported ? "" : " (the stand-in's generic answer did not fit; --endpoint reaches this success path)"
                    report.record(
                        valid, passed,
                        passed
                            ? "answered \(error.kind.envelopeType): \(error.message)\(partial)"
                            : "failed against the stand-in engine, which answers every request with success: \(error.description)")
                case .engineDown, .live:
                    passed = acceptableStatuses.contains(error.kind) && !error.isContractViolation
                    report.record(
                        valid, passed, passed ? "answered \(error.kind.envelopeType): \(error.message)" : "bad failure: \(error.description)")
                }
            }
        }
        guard phase.isFirst else { return }
        for (label, request) in [("malformed JSON", malformedRequest), ("non-object JSON", nonObjectRequest)] {
            let check = "\(name) (\(label))"
            report.starting(check)
            do {
                _ = try await instance.invoke(operation, request: Array(request.utf8), timeout: timeout)
                report.record(check, false, "answered OK to \(label); expected invalid_argument")
            } catch {
                let passed = error.kind == .invalidArgument && !error.isContractViolation
                report.record(
                    check, passed, passed ? "rejected: \(error.message)" : "expected invalid_argument with a message, got \(error.description)")
            }
        }
    }

    /// True when an isolated driver's host process ended since `exits` was read: a crash or a
    /// hang, whatever status the call then answered.
    private static func hostEnded(_ instance: DriverInstance, since exits: Int?) -> Bool {
        guard let exits, let host = instance.driver.isolatedHost else { return false }
        return host.exitCount != exits
    }

    /// What is wrong with a successful answer, or nil.
    public static func answerProblem(_ operation: DriverOperation, _ answer: [UInt8]) -> String? {
        guard operation.answersJSON else {
            return String(validating: answer, as: UTF8.self) == nil ? "metrics text is not valid UTF-8" : nil
        }
        guard let value = try? JSONCoding.decode(JSONValue.self, from: answer) else {
            return "the answer is not valid JSON: \(String(decoding: answer.prefix(80), as: UTF8.self))"
        }
        let requiredFlag: String? =
            switch operation {
            case .health: "healthy"
            case .readiness: "ready"
            default: nil
            }
        if operation == .engineInfo {
            guard case .object(let object) = value, case .string(let engine)? = object["engine"], !engine.isEmpty else {
                return "the answer must be an object with a string \"engine\" (the engine's kind), e.g. {\"engine\":\"vllm\",\"version\":\"0.33.0\"}"
            }
        }
        if operation == .listModels {
            guard case .object(let object) = value, case .array(let cards)? = object["data"],
                cards.allSatisfy({ card in if case .object(let fields) = card, case .string? = fields["id"] { true } else { false } })
            else {
                return "the answer must be an OpenAI model list: {\"object\":\"list\",\"data\":[{\"id\":...}]}"
            }
        }
        if let requiredFlag {
            guard case .object(let object) = value, case .bool = object[requiredFlag] else {
                return "the answer must be an object with a boolean \"\(requiredFlag)\""
            }
        }
        return nil
    }

    private static func checkExtension(
        _ operation: ExtensionOperation, on instance: DriverInstance, timeout: TimeAmount, into report: inout ConformanceReport
    ) async {
        var arguments: [String: JSONValue] = [:]
        for parameter in operation.parameters {
            arguments[parameter.name] =
                switch parameter.type {
                case .bool: .bool(false)
                case .int64: .integer(0)
                case .double: .number(0)
                case .string, .void: .string("")
                }
        }
        let body = (try? JSONCoding.encode(JSONValue.object(arguments))) ?? Array("{}".utf8)
        let name = "extension \(operation.name)"
        report.starting("\(name) (zero arguments)")
        let exits = instance.driver.isolatedHost?.exitCount
        do {
            let result = try await instance.invokeExtension(named: operation.name, argumentsJSON: body, timeout: timeout)
            report.record("\(name) (zero arguments)", true, "returned \(result.typeName)")
        } catch {
            let passed = acceptableStatuses.contains(error.kind) && !error.isContractViolation && !hostEnded(instance, since: exits)
            report.record("\(name) (zero arguments)", passed, passed ? "answered \(error.kind.envelopeType): \(error.message)" : "bad failure: \(error.description)")
        }
    }

    /// ABI 1.3 `plan_launch`: a plan for a valid spec that puts the port and the served name on
    /// the command line, a refusal of each flag the plan says it owns, and of malformed JSON.
    private static func checkLaunchPlan(driver: LoadedDriver, pool: WorkerPool, into report: inout ConformanceReport) async {
        let planner = LaunchPlanner(pool: pool)
        let spec = LaunchSpec(
            engineKind: driver.engineKinds[0], modelName: "conformance-check", modelPath: "/nonexistent/conformance-check",
            host: "127.0.0.1", port: 20999, config: .object([:]))
        report.starting("plan_launch (valid spec)")
        let plan: LaunchPlan
        do {
            plan = try await planner.plan(spec, driver: driver)
            let problem: String? =
                !plan.argv.contains("20999") ? "the port is not on the command line"
                : !plan.argv.contains(where: { $0.contains("conformance-check") }) ? "the served name is not on the command line"
                : plan.readiness.bootTimeoutSeconds <= 0 ? "boot_timeout_seconds must be positive" : nil
            report.record("plan_launch (valid spec)", problem == nil, problem ?? plan.argv.joined(separator: " "))
        } catch {
            report.record("plan_launch (valid spec)", false, error.description)
            return
        }
        for flag in plan.ownedFlags {
            var owned = spec
            owned.args = [[flag, "1"]]
            report.starting("plan_launch refuses \(flag)")
            do {
                _ = try await planner.plan(owned, driver: driver)
                report.record("plan_launch refuses \(flag)", false, "a flag the plan owns was accepted from the operator")
            } catch {
                report.record("plan_launch refuses \(flag)", error.kind == .invalidArgument, error.message)
            }
        }
        report.starting("plan_launch (malformed JSON)")
        do {
            _ = try await planner.plan(json: Array(malformedRequest.utf8), driver: driver)
            report.record("plan_launch (malformed JSON)", false, "answered OK to malformed JSON; expected invalid_argument")
        } catch {
            report.record("plan_launch (malformed JSON)", error.kind == .invalidArgument && !error.isContractViolation, error.message)
        }
    }

    private static func checkSecondInstance(
        driver: LoadedDriver, configuration: InstanceConfiguration, pool: WorkerPool, client: CurlHTTPClient, logger: Logger,
        into report: inout ConformanceReport
    ) async {
        var second = configuration
        second.name = "conformance-2"
        report.starting("second instance (multi_instance)")
        do {
            let instance = try await DriverInstance.create(
                driver: driver, configuration: second, pool: pool, httpClient: client, logger: logger)
            await instance.shutdown()
            report.record("second instance (multi_instance)", true)
        } catch {
            report.record("second instance (multi_instance)", false, error.description)
        }
    }
}
