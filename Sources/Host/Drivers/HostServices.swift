#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import PluginABI
import Synchronization

/// What every `host_context` pointer handed to a driver refers to: the logger tagged with the
/// driver and instance, the HTTP client, and for an operation its deadline and cancellation.
///
/// The host keeps the object alive while the driver may use the pointer (the instance for an
/// instance context, the call for a call context).
public final class HostContext: Sendable {
    let logger: Logger
    let transport: any DriverHTTPTransport
    let deadline: NIODeadline?
    private let cancelled = Atomic<Bool>(false)
    let progress: (@Sendable (UInt64, UInt64, String?) -> Void)?

    init(
        logger: Logger, transport: any DriverHTTPTransport, deadline: NIODeadline? = nil,
        progress: (@Sendable (UInt64, UInt64, String?) -> Void)? = nil
    ) {
        self.logger = logger
        self.transport = transport
        self.deadline = deadline
        self.progress = progress
    }

    /// Asks the driver to stop; it sees it through `is_cancelled` and failing HTTP calls.
    func cancel() { cancelled.store(true, ordering: .relaxed) }

    var isCancelled: Bool {
        if cancelled.load(ordering: .relaxed) { return true }
        if let deadline { return deadline <= .now() }
        return false
    }

    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> HostContext? {
        pointer.map { Unmanaged<HostContext>.fromOpaque($0).takeUnretainedValue() }
    }
}

/// Where a driver's `http_request` goes: the host's libcurl client in process, the parent's
/// through the wire in an isolated driver's host (`ProxiedHTTPTransport`).
protocol DriverHTTPTransport: Sendable {
    /// Blocking; `isCancelled` is polled while the request runs.
    func performForDriver(
        _ request: HTTPClientRequest, deadline: NIODeadline?, isCancelled: @escaping () -> Bool
    ) -> Result<HTTPClientResponse, RuntimeError>
}

extension CurlHTTPClient: DriverHTTPTransport {
    func performForDriver(
        _ request: HTTPClientRequest, deadline: NIODeadline?, isCancelled: @escaping () -> Bool
    ) -> Result<HTTPClientResponse, RuntimeError> {
        perform(request, deadline: deadline, isCancelled: isCancelled).mapError { RuntimeError($0) }
    }
}

/// The process-wide `ert_host_info` and `ert_host_services` tables.
///
/// Drivers keep these pointers for the life of the process and are never unloaded, so the
/// tables are allocated once and never freed. They are immutable after creation.
public final class HostABI: @unchecked Sendable {
    public static let shared = HostABI()

    let info: UnsafePointer<ert_host_info>
    let services: UnsafePointer<ert_host_services>

    private init() {
        let services = UnsafeMutablePointer<ert_host_services>.allocate(capacity: 1)
        services.initialize(
            to: ert_host_services(
                struct_size: UInt32(MemoryLayout<ert_host_services>.size),
                log: HostServiceFunctions.log,
                http_request: HostServiceFunctions.httpRequest,
                is_cancelled: HostServiceFunctions.isCancelled,
                remaining_ms: HostServiceFunctions.remainingMilliseconds,
                report_progress: HostServiceFunctions.reportProgress,
                get_extension: HostServiceFunctions.getExtension))
        let info = UnsafeMutablePointer<ert_host_info>.allocate(capacity: 1)
        info.initialize(
            to: ert_host_info(
                struct_size: UInt32(MemoryLayout<ert_host_info>.size),
                magic: ERT_MAGIC,
                abi_major: UInt16(ERT_ABI_VERSION_MAJOR),
                abi_minor: UInt16(ERT_ABI_VERSION_MINOR),
                host_name: UnsafePointer(strdup("engine-runtime")),
                host_version: UnsafePointer(strdup(EngineRuntimeVersion.current)),
                services: UnsafePointer(services)))
        self.services = UnsafePointer(services)
        self.info = UnsafePointer(info)
    }
}

/// The C functions of the services table. Each one tolerates NULL and garbage it can detect,
/// because a driver bug must not crash the host.
enum HostServiceFunctions {
    /// Lines from a driver that had no context at hand (the header allows NULL).
    static let untaggedLogger = Logger(label: "engine-runtime.driver")

    static let log: @convention(c) (UnsafeMutableRawPointer?, ert_log_level, UnsafePointer<CChar>?) -> Void = {
        context, level, message in
        guard let message else { return }
        let logger = HostContext.from(context)?.logger ?? untaggedLogger
        let text = String(cString: message)
        let logLevel: Logger.Level =
            switch level {
            case ERT_LOG_TRACE: .trace
            case ERT_LOG_DEBUG: .debug
            case ERT_LOG_INFO: .info
            case ERT_LOG_WARNING: .warning
            default: .error
            }
        logger.log(level: logLevel, "\(text)")
    }

    static let isCancelled: @convention(c) (UnsafeMutableRawPointer?) -> Bool = { context in
        HostContext.from(context)?.isCancelled ?? false
    }

    static let remainingMilliseconds: @convention(c) (UnsafeMutableRawPointer?) -> Int64 = { context in
        guard let deadline = HostContext.from(context)?.deadline else { return -1 }
        return max(0, (deadline - .now()).nanoseconds / 1_000_000)
    }

    static let reportProgress:
        @convention(c) (UnsafeMutableRawPointer?, UInt64, UInt64, UnsafePointer<CChar>?) -> Void = {
            context, done, total, message in
            HostContext.from(context)?.progress?(done, total, message.map { String(cString: $0) })
        }

    /// No host extensions exist in ABI 1.0.
    static let getExtension: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> UnsafeRawPointer? = {
        _, _ in nil
    }

    static let httpRequest:
        @convention(c) (
            UnsafeMutableRawPointer?, UnsafePointer<ert_http_request>?, UnsafeMutablePointer<ert_http_response>?,
            UnsafePointer<ert_sink>?, UnsafeMutablePointer<ert_error>?
        ) -> ert_status = { context, requestPointer, responsePointer, body, errorPointer in
            func fail(_ error: RuntimeError) -> ert_status { error.write(to: errorPointer) }
            guard let context = HostContext.from(context) else {
                return fail(RuntimeError(.invalidArgument, "http_request: host_context is NULL"))
            }
            guard let requestPointer,
                let request = GrowableStruct.read(
                    ert_http_request.self, at: requestPointer, minimumSize: ABIMinimumSize.httpRequest)?.value
            else {
                return fail(RuntimeError(.invalidArgument, "http_request: request is NULL or its struct_size is too small"))
            }
            guard let method = request.method, let url = request.url else {
                return fail(RuntimeError(.invalidArgument, "http_request: method and url are required"))
            }
            var headers: [String] = []
            if request.header_count > 0 {
                guard let lines = request.headers else {
                    return fail(RuntimeError(.invalidArgument, "http_request: headers is NULL but header_count > 0"))
                }
                for index in 0..<request.header_count {
                    guard let line = lines[index] else {
                        return fail(RuntimeError(.invalidArgument, "http_request: header \(index) is NULL"))
                    }
                    headers.append(String(cString: line))
                }
            }
            var bodyBytes: [UInt8] = []
            if request.body_length > 0 {
                guard let bodyPointer = request.body else {
                    return fail(RuntimeError(.invalidArgument, "http_request: body is NULL but body_length > 0"))
                }
                bodyBytes = Array(UnsafeRawBufferPointer(start: bodyPointer, count: request.body_length))
            }
            // No timeout of the driver's own: the operation's deadline is the bound (perform
            // clamps to it), so --mutation-timeout reaches the engine call whatever its length.
            let timeout =
                request.timeout_ms > 0
                ? TimeAmount.milliseconds(Int64(request.timeout_ms))
                : context.deadline.map { max(.milliseconds(1), $0 - .now()) } ?? CurlHTTPClient.defaultTimeout
            let limit = request.max_response_bytes > 0
                ? Int(min(request.max_response_bytes, UInt64(Int.max))) : CurlHTTPClient.defaultMaxResponseBytes
            let outgoing = HTTPClientRequest(
                method: String(cString: method), url: String(cString: url), headers: headers, body: bodyBytes,
                timeout: timeout, idempotent: request.flags & UInt32(ERT_HTTP_IDEMPOTENT) != 0,
                maxResponseBytes: limit)
            let result = context.transport.performForDriver(outgoing, deadline: context.deadline) { context.isCancelled }
            switch result {
            case .failure(let error):
                return fail(error)
            case .success(let response):
                if let responsePointer {
                    let size = GrowableStruct.declaredSize(at: responsePointer)
                    if size >= MemoryLayout<ert_http_response>.offset(of: \.content_type)! {
                        responsePointer.pointee.status = Int32(response.status)
                    }
                    if size >= ABIMinimumSize.httpResponse {
                        CString.copy(response.contentType, into: &responsePointer.pointee.content_type)
                    }
                }
                if let body, !body.write(response.body) {
                    return fail(RuntimeError(.upstream, "the driver's sink refused the response body"))
                }
                return ERT_STATUS_OK
            }
        }
}
