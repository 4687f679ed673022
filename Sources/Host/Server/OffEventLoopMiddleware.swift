import Hummingbird

/// Runs a group's routes off the event loop (`offEventLoop`): for routes whose services wait
/// on the disk or start processes (downloads, the model runtime), which must not hold up the
/// other connections of the loop they arrived on.
struct OffEventLoopMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await offEventLoop { try await next(request, context) }
    }
}
