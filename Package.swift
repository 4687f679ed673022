// swift-tools-version:6.2
import PackageDescription

// Upcoming features every Swift target opts into.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "EngineRuntime",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "engine-runtime", targets: ["EngineRuntimeCLI"]),
        // A stand-in vLLM or SGLang server for tests and demos.
        .executable(name: "engine-simulator", targets: ["EngineSimulator"]),
        // The in-tree drivers ship as shared libraries loaded at run time through the C ABI.
        .library(name: "EngineVLLM", type: .dynamic, targets: ["EngineVLLM"]),
        .library(name: "EngineSGLang", type: .dynamic, targets: ["EngineSGLang"]),
        .library(name: "EngineLlamaCpp", type: .dynamic, targets: ["EngineLlamaCpp"]),
    ],
    dependencies: [
        // `traits: []` drops full Foundation and swift-configuration from Hummingbird:
        // faster start-up and a smaller resident set (see docs/operators.md).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // NIOHTTPTypes: the HTTP parts the connection guard sees after Hummingbird's decoder.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Download verification (sha256, git blob sha1, MD5); 4.x needs only FoundationEssentials.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // `drivers check` runs its checks in a child process; `traits: []` keeps Foundation out.
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2", traits: []),
    ],
    targets: [
        // The driver ABI: a pure C11 header plus a file of layout assertions.
        .target(name: "PluginABI", path: "Sources/PluginABI"),
        // The ABI's Swift side, shared by the host and EngineDriverKit: enums from the header's
        // constants, struct sizes, error records, sinks, JSON values.
        .target(name: "DriverABI", dependencies: ["PluginABI"], path: "Sources/DriverABI", swiftSettings: swiftSettings),
        .systemLibrary(
            name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CFFI", path: "Sources/CFFI", pkgConfig: "libffi",
            providers: [.apt(["libffi-dev"])]),

        // The host: driver loading, host services, engines, HTTP facade.
        .target(
            name: "Host",
            dependencies: [
                "PluginABI", "DriverABI", "CCurl", "CFFI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // HTTPParserError, which the HTTP service tells apart as Hummingbird does.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                // RSA (RS256) for GCS service-account keys.
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            path: "Sources/Host",
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "EngineRuntimeCLI",
            dependencies: [
                "Host",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/EngineRuntimeCLI",
            swiftSettings: swiftSettings),

        // The /metrics hot path alone, bytes in, bytes out: `swift run -c release metrics-bench`.
        .executableTarget(
            name: "metrics-bench",
            dependencies: ["Host", .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOCore", package: "swift-nio")],
            path: "Sources/MetricsBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "EngineSimulator",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/EngineSimulator",
            swiftSettings: swiftSettings),

        // What Swift drivers share: C-ABI plumbing behind a Swift protocol. Linked statically
        // into each driver; the host never links it.
        .target(
            name: "EngineDriverKit", dependencies: ["PluginABI", "DriverABI"], path: "Sources/EngineDriverKit",
            swiftSettings: swiftSettings),
        .target(
            name: "EngineVLLM", dependencies: ["EngineDriverKit", "PluginABI"],
            path: "Sources/EngineVLLM", swiftSettings: swiftSettings),
        .target(
            name: "EngineSGLang", dependencies: ["EngineDriverKit", "PluginABI"],
            path: "Sources/EngineSGLang", swiftSettings: swiftSettings),
        .target(
            name: "EngineLlamaCpp", dependencies: ["EngineDriverKit", "PluginABI"],
            path: "Sources/EngineLlamaCpp", swiftSettings: swiftSettings),

        // What both test targets share (paths, temporary directories, running programs).
        .target(
            name: "TestSupport", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Tests/TestSupport",
            swiftSettings: swiftSettings),
        // Fast in-process tests: routes through HummingbirdTesting, services, the ABI layer, the
        // kit, parsers, concurrency primitives. No spawned binaries.
        .testTarget(
            name: "UnitTests",
            dependencies: [
                "Host", "PluginABI", "DriverABI", "EngineDriverKit", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/UnitTests",
            swiftSettings: swiftSettings),
        // Process-level tests: the real binary on loopback, drivers compiled with cc, nginx,
        // moto, Prometheus.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Host", "PluginABI", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/IntegrationTests",
            swiftSettings: swiftSettings),
    ]
)
