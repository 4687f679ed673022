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
            runtime sidecar's command line did).
            """,
        version: EngineRuntimeVersion.current,
        subcommands: [Serve.self, DriversCommand.self, DownloadCommand.self],
        defaultSubcommand: Serve.self)
}
