import ArgumentParser
import Host

@main
struct EngineRuntimeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine-runtime",
        abstract: "Management sidecar for LLM inference engines (vLLM, SGLang, vendor drivers).",
        discussion: """
            Runs next to an inference engine and gives control planes one HTTP API for every \
            engine. Engines are driven by drivers: shared libraries loaded at run time through \
            the C ABI in engine_runtime_driver.h.

            With no subcommand, `serve` runs (so `engine-runtime --port 8080` works as the AIBrix \
            runtime sidecar's command line did). Started under AIBrix's program names it \
            behaves as they did: `aibrix_runtime` serves (the command AIBrix's sidecar webhook \
            gives the container), `aibrix_download` downloads (`download`).
            """,
        version: EngineRuntimeVersion.current,
        subcommands: [Serve.self, DriversCommand.self, DownloadCommand.self, DriverHostCommand.self],
        defaultSubcommand: Serve.self)

    /// AIBrix's entry points (`aibrix_runtime`, `aibrix_download`) are this binary under
    /// another name: the name picks the subcommand.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let program = CommandLine.arguments.first?.split(separator: "/").last.map(String.init) ?? ""
        await main(program == "aibrix_download" ? ["download"] + arguments : arguments)
    }
}
