import FoundationEssentials
import Synchronization

/// One download: what it fetches, where to, and how far it got. Shared by every request that
/// asked for the same target while it runs.
public final class DownloadJob: Sendable, Hashable {
    public static func == (a: DownloadJob, b: DownloadJob) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }

    public enum State: String, Codable, Sendable {
        case queued, listing, downloading, verifying, completed, failed, cancelled
        var isFinished: Bool { self == .completed || self == .failed || self == .cancelled }
    }

    /// What `GET /v1/downloads/{id}` shows.
    public struct Snapshot: Codable, Sendable, Equatable {
        public var id: String
        public var source: String
        public var kind: String
        public var model_name: String
        public var local_path: String
        public var state: State
        public var bytes_done: Int64
        public var bytes_total: Int64
        public var files_done: Int
        public var files_total: Int
        public var bytes_per_second: Int64
        public var error: String?
        public var error_kind: ErrorKind?
        public var created_at: String
        public var finished_at: String?
    }

    public let id: String
    public let source: ArtifactSource
    /// The URI as shown in answers and logs (an http query string dropped: it may hold a token).
    public let displayURI: String
    public let target: ArtifactTarget
    let settings: DownloadSettings

    private struct Progress {
        var snapshot: Snapshot
        var samples: [(time: ContinuousClock.Instant, bytes: Int64)] = []
        var waiters: [CheckedContinuation<Result<ArtifactTarget, RuntimeError>, Never>] = []
        var planWaiters: [CheckedContinuation<Void, Never>] = []
        var planned = false
    }

    private let progress: Mutex<Progress>
    private let cancelRequested = Atomic<Bool>(false)

    init(source: ArtifactSource, uri: String, target: ArtifactTarget, settings: DownloadSettings) {
        var random = SystemRandomNumberGenerator()
        id = "dl-" + String(random.next() & 0xFFFF_FFFF_FFFF, radix: 16)
        self.source = source
        displayURI = CurlHTTPClient.redacted(uri)
        self.target = target
        self.settings = settings
        progress = Mutex(
            Progress(
                snapshot: Snapshot(
                    id: id, source: displayURI, kind: source.kind, model_name: target.modelName, local_path: target.path,
                    state: .queued, bytes_done: 0, bytes_total: 0, files_done: 0, files_total: 0, bytes_per_second: 0,
                    error: nil, error_kind: nil, created_at: Date().ISO8601Format(), finished_at: nil)))
    }

    public var snapshot: Snapshot { progress.withLock { $0.snapshot } }

    /// Bytes this job still has to write, once planned and until it ends: what its free-space
    /// reservation holds.
    var reservedBytes: Int64 {
        progress.withLock { progress in
            guard progress.planned, !progress.snapshot.state.isFinished else { return 0 }
            return max(0, progress.snapshot.bytes_total - progress.snapshot.bytes_done)
        }
    }
    public var isCancelled: Bool { cancelRequested.load(ordering: .relaxed) }

    /// Asks the download to stop; finished bytes stay staged for a later resume.
    public func cancel() { cancelRequested.store(true, ordering: .relaxed) }

    /// Waits for the end: the published target, or why it failed.
    public func wait() async -> Result<ArtifactTarget, RuntimeError> {
        await withCheckedContinuation { continuation in
            let finished: Result<ArtifactTarget, RuntimeError>? = progress.withLock { progress in
                switch progress.snapshot.state {
                case .completed: return .success(target)
                case .failed, .cancelled:
                    return .failure(RuntimeError(progress.snapshot.error_kind ?? .upstream, progress.snapshot.error ?? "failed"))
                default:
                    progress.waiters.append(continuation)
                    return nil
                }
            }
            if let finished { continuation.resume(returning: finished) }
        }
    }

    /// Waits until the file list is known (or the job ended), so callers can report a
    /// missing artifact at once.
    public func waitUntilPlanned() async {
        await withCheckedContinuation { continuation in
            let done = progress.withLock { progress in
                if progress.planned || progress.snapshot.state.isFinished { return true }
                progress.planWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: Updates from the download thread

    func update(_ change: (inout Snapshot) -> Void) {
        progress.withLock { change(&$0.snapshot) }
    }

    /// The file list is known; the job waits for a transfer slot (`queued`) until the
    /// transfer begins.
    func planned(files: Int, bytes: Int64, alreadyDone: Int64) {
        let waiters = progress.withLock { progress in
            progress.snapshot.files_total = files
            progress.snapshot.bytes_total = bytes
            progress.snapshot.bytes_done = alreadyDone
            progress.snapshot.state = .queued
            progress.planned = true
            defer { progress.planWaiters = [] }
            return progress.planWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// New totals; the rate is measured over the last five seconds.
    func advanced(bytes: Int64, files: Int) {
        let now = ContinuousClock.now
        progress.withLock { progress in
            progress.snapshot.bytes_done = bytes
            progress.snapshot.files_done = files
            progress.samples.append((now, bytes))
            progress.samples.removeAll { now - $0.time > .seconds(5) }
            if let first = progress.samples.first, now > first.time + .milliseconds(200) {
                progress.snapshot.bytes_per_second = Int64(Double(bytes - first.bytes) / ((now - first.time) / .seconds(1)))
            }
        }
    }

    func finish(_ result: Result<Void, RuntimeError>) {
        let (waiters, planWaiters) = progress.withLock { progress in
            progress.snapshot.finished_at = Date().ISO8601Format()
            progress.snapshot.bytes_per_second = 0
            switch result {
            case .success:
                progress.snapshot.state = .completed
                progress.snapshot.bytes_done = progress.snapshot.bytes_total
                progress.snapshot.files_done = progress.snapshot.files_total
            case .failure(let error):
                progress.snapshot.state = error.kind == .cancelled ? .cancelled : .failed
                progress.snapshot.error = error.message
                progress.snapshot.error_kind = error.kind
            }
            defer {
                progress.waiters = []
                progress.planWaiters = []
            }
            return (progress.waiters, progress.planWaiters)
        }
        let outcome = result.map { target }
        for waiter in waiters { waiter.resume(returning: outcome) }
        for waiter in planWaiters { waiter.resume() }
    }
}
