import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Threads for blocking work that exist only while there is work: a thread is started when
/// work arrives and none is free (up to `maximum`), and ends after `idleTimeout` without any.
///
/// NIO's thread pool starts all its threads at once and keeps them: 16 driver threads and 8
/// download threads per sidecar, idle for most of its life, were 24 of its 27 threads, and a
/// node of a thousand sidecars ran into pid limits. Work runs in submission order; the same
/// `NIOThreadPool.WorkItemState` is handed to it (`.cancelled` once the pool is shut down).
final class ElasticThreadPool: @unchecked Sendable {
    typealias Work = @Sendable (NIOThreadPool.WorkItemState) -> Void

    let maximum: Int
    let idleTimeout: Duration
    private let name: String
    // Guarded by `mutex`; `@unchecked Sendable` rests on that.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queue: [Work] = []
    private var head = 0
    private var threads = 0
    private var idle = 0
    private var stopped = false
    private var drained: [CheckedContinuation<Void, Never>] = []

    init(maximum: Int, idleTimeout: Duration = .seconds(30), name: String) {
        precondition(maximum >= 1)
        self.maximum = maximum
        self.idleTimeout = idleTimeout
        self.name = String(name.prefix(15))  // the kernel's limit for thread names
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(wake, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        wake.deallocate()
        mutex.deallocate()
    }

    /// Threads running now (busy or waiting for work).
    var threadCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return threads
    }

    func submit(_ work: @escaping Work) {
        pthread_mutex_lock(mutex)
        if stopped {
            pthread_mutex_unlock(mutex)
            work(.cancelled)
            return
        }
        queue.append(work)
        // A new thread when the waiting work outnumbers the threads waiting for it.
        let start = queue.count - head > idle && threads < maximum
        if start { threads += 1 }
        let signal = idle > 0
        pthread_mutex_unlock(mutex)
        // After the unlock: a worker woken while the lock is still held only wakes to wait for
        // it (a contended futex wait and wake per submission).
        if signal { pthread_cond_signal(wake) }
        if start { spawn() }
    }

    /// Stops taking work: what is queued runs with `.cancelled`, and this returns once every
    /// thread has ended.
    func shutdownGracefully() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            pthread_mutex_lock(mutex)
            stopped = true
            pthread_cond_broadcast(wake)
            if threads == 0 {
                pthread_mutex_unlock(mutex)
                continuation.resume()
                return
            }
            drained.append(continuation)
            pthread_mutex_unlock(mutex)
        }
    }

    private func spawn() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            let pool = Unmanaged<ElasticThreadPool>.fromOpaque(context!).takeRetainedValue()
            pool.run()
            return nil
        }, context)
        guard created == 0 else {
            // No thread: the work waits for a running one (there is one unless none could be made).
            Unmanaged<ElasticThreadPool>.fromOpaque(context).release()
            pthread_mutex_lock(mutex)
            threads -= 1
            let orphaned = threads == 0 ? Array(queue[head...]) : []
            if threads == 0 { queue.removeAll(); head = 0 }
            pthread_mutex_unlock(mutex)
            for work in orphaned { work(.cancelled) }
            return
        }
        pthread_detach(thread)
        _ = GNUExtensions.setThreadName?(thread, name)
    }

    private func run() {
        pthread_mutex_lock(mutex)
        while true {
            if head < queue.count {
                let work = queue[head]
                head += 1
                if head == queue.count {
                    queue.removeAll(keepingCapacity: true)
                    head = 0
                }
                let state: NIOThreadPool.WorkItemState = stopped ? .cancelled : .active
                pthread_mutex_unlock(mutex)
                work(state)
                pthread_mutex_lock(mutex)
                continue
            }
            if stopped { break }
            idle += 1
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            deadline.tv_sec += Int(idleTimeout.components.seconds)
            let waited = pthread_cond_timedwait(wake, mutex, &deadline)
            idle -= 1
            if waited == ETIMEDOUT, head >= queue.count { break }
        }
        threads -= 1
        let waiters = threads == 0 && stopped ? drained : []
        if !waiters.isEmpty { drained.removeAll() }
        pthread_mutex_unlock(mutex)
        for waiter in waiters { waiter.resume() }
    }
}
