import Dispatch
import NIOPosix
import Synchronization

/// How far a staged file is written without a gap from byte 0. The transfer thread moves it
/// (after `pwrite` returned, so a reader that sees the value finds the bytes in the page cache);
/// a rewind (bytes before it will be written again) bumps `epoch`, which tells the reader to
/// throw away what it hashed.
final class WrittenFrontier: Sendable {
    private let written = Atomic<Int64>(0)
    private let rewinds = Atomic<Int>(0)

    var end: Int64 { written.load(ordering: .acquiring) }
    var epoch: Int { rewinds.load(ordering: .acquiring) }

    func advance(to offset: Int64) { written.store(offset, ordering: .releasing) }

    func rewind() {
        rewinds.add(1, ordering: .releasing)
        written.store(0, ordering: .releasing)
    }
}

/// Hashes staged files on a thread of its own while libcurl's thread writes them: it reads each
/// file back (from the page cache) up to its frontier, so when the transfer ends only the last
/// few milliseconds of bytes are left to hash instead of every file. Without it, verification
/// was a second pass over the whole download after the transfer (a third of an S3 download's
/// time), and hashing inside libcurl's callbacks slowed the transfer by as much.
///
/// `start`, then `finish` once the transfer is over; `finish` hands back, per file, what was
/// hashed (for `FileDigest.mismatch` to complete). The thread, one of `threads`, only reads
/// the files.
final class DigestWorker: @unchecked Sendable {
    private struct Entry {
        let path: String
        let frontier: WrittenFrontier
        let fresh: RunningDigest
        var digest: RunningDigest
        var epoch: Int
    }

    // Only the worker's thread touches `entries` between `start` and the end of `finish`'s wait.
    private var entries: [Entry?]
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private var started = false
    /// Bytes hashed per file, for a reader on another thread.
    private let progress: Mutex<[Int64]>
    /// Bytes read back per file per turn, so one file does not hold up the others.
    static let slice: Int64 = 8 << 20

    private let threads: ElasticThreadPool

    init(_ files: [StagedFile], threads: ElasticThreadPool) {
        self.threads = threads
        entries = files.map { file in
            RunningDigest(for: file.remote.digest, size: file.remote.size).map {
                Entry(path: file.dataPath, frontier: file.frontier, fresh: $0, digest: $0, epoch: file.frontier.epoch)
            }
        }
        progress = Mutex(Array(repeating: 0, count: files.count))
    }

    /// Bytes of file `index` hashed so far (0 where nothing is checked).
    func hashedBytes(_ index: Int) -> Int64 { progress.withLock { $0[index] } }

    func start() {
        guard entries.contains(where: { $0 != nil }) else { return }
        started = true
        // It holds its thread for the whole transfer: a thread of the runtime's own pool, not
        // one of the shared dispatch queues'.
        threads.submit { [self] state in
            if state == .active { run() }
            done.signal()
        }
    }

    /// Stops the thread and returns each file's digest so far (nil where nothing is checked).
    func finish() -> [RunningDigest?] {
        if started {
            stopping.store(true, ordering: .releasing)
            wake.signal()
            done.wait()
            started = false
        }
        return entries.map { entry in entry.flatMap { $0.frontier.epoch == $0.epoch ? $0.digest : nil } }
    }

    private func run() {
        while !stopping.load(ordering: .acquiring) {
            var worked = false
            for index in entries.indices {
                guard var entry = entries[index] else { continue }
                let epoch = entry.frontier.epoch
                if epoch != entry.epoch {
                    entry.digest = entry.fresh
                    entry.epoch = epoch
                }
                let end = entry.frontier.end
                if end > entry.digest.bytes {
                    var digest = entry.digest
                    // A failed read leaves the digest where it was (verification reads the rest)
                    // and is no work done: the loop waits before trying again instead of spinning.
                    if (try? digest.read(entry.path, upTo: min(end, digest.bytes + Self.slice))) != nil {
                        worked = true
                        if entry.frontier.epoch == epoch {
                            entry.digest = digest
                            progress.withLock { $0[index] = digest.bytes }
                        }
                    }
                }
                entries[index] = entry
            }
            // Polls while there is nothing new: 100 wake-ups a second, only while a download runs.
            if !worked { _ = wake.wait(timeout: .now() + .milliseconds(10)) }
        }
    }
}
