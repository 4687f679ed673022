import DriverABI
import NIOCore
import PluginABI

/// Asks a driver for its engine's launch plan (ABI 1.3 `plan_launch`) on a worker thread.
struct LaunchPlanner: Sendable {
    let pool: WorkerPool
    /// How long an isolated driver's host may take to answer.
    static let isolatedTimeout = TimeAmount.seconds(10)

    func plan(_ spec: LaunchSpec, driver: LoadedDriver) async throws(RuntimeError) -> LaunchPlan {
        let request: [UInt8]
        do { request = try JSONCoding.encode(spec) } catch { throw RuntimeError(.internalError, "could not encode the launch spec: \(error)") }
        return try await plan(json: request, driver: driver)
    }

    /// `plan_launch` with any request text (`drivers check` sends malformed ones too).
    func plan(json request: [UInt8], driver: LoadedDriver) async throws(RuntimeError) -> LaunchPlan {
        guard driver.canLaunch else {
            throw RuntimeError(
                .unsupported, "driver \(driver.name) (ABI 1.\(driver.abiMinor)) cannot launch its engine: it has no plan_launch (ABI 1.3)")
        }
        let bytes: Result<[UInt8], RuntimeError>
        switch driver.binding {
        case .inProcess(let entry):
            guard let planLaunch = entry.planLaunch else { throw RuntimeError(.unsupported, "driver \(driver.name) has no plan_launch") }
            bytes = await pool.run { DriverCalls.planLaunch(planLaunch, request: request) }
        case .isolated(let host):
            bytes = await host.planLaunch(request: request, deadline: .now() + Self.isolatedTimeout)
        }
        let answer = try bytes.get()
        let plan: LaunchPlan
        do { plan = try JSONCoding.decode(LaunchPlan.self, from: answer) } catch {
            throw RuntimeError(.internalError, "driver \(driver.name) returned a launch plan that is not one: \(error)")
        }
        guard let program = plan.argv.first, !program.isEmpty else {
            throw RuntimeError(.internalError, "driver \(driver.name) returned a launch plan without a program")
        }
        guard plan.argv.allSatisfy({ !$0.utf8.contains(0) }), plan.env.allSatisfy({ !$0.key.isEmpty && !$0.key.contains("=") }) else {
            throw RuntimeError(.internalError, "driver \(driver.name) returned a launch plan with a malformed word or variable")
        }
        return plan
    }
}
