import NIOCore

/// Runs a connection's task on its channel's event loop.
///
/// Without it, every request crossed threads four times: the event loop resumed the
/// connection's task on a concurrency pool thread, that thread handed a driver call to a
/// worker, the worker resumed a pool thread again, and that thread woke the event loop to write
/// the response. On the connection's own loop, a request read resumes the task without a
/// wake-up, a driver call's answer wakes the loop once, and the response is written in place
/// (NIO's writer writes directly when called on the loop): a LoRA load went from 8.9 context
/// switches to 7.0, `/healthz` from 3.4 to 1.0 (docs/architecture.md, Lifecycle).
///
/// The catch is NIO's rule: code on the loop must not block or run long. Routes do little
/// but decode, validate and await; work that takes milliseconds of CPU or blocks on the disk
/// runs in `offEventLoop` or on the worker pool.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `eventLoop` is immutable and an EventLoop is thread-safe.
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        // On the loop already, `execute` queues the job for this turn without a wake-up.
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
