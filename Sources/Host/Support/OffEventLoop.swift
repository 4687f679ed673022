/// Runs `body` on the concurrency pool, off the event loop a connection's task runs on
/// (`EventLoopTaskExecutor`): for work inside a route that takes milliseconds of CPU (rendering
/// `/metrics`) or waits on the disk (planning a download, removing a directory). Called off
/// the loop, it changes nothing.
func offEventLoop<T: Sendable, E: Error>(_ body: () async throws(E) -> T) async throws(E) -> T {
    try await withTaskExecutorPreference(globalConcurrentExecutor, operation: body)
}
