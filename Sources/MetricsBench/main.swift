// The regression benchmark of the /metrics hot path alone, bytes in, bytes out: parse,
// standardize with a driver's real rules, write the standard set and the originals.
//
//   swift run -c release metrics-bench [EXPOSITION] [--driver PATH.so] [--iterations N]
//
// EXPOSITION defaults to a 2 MB vLLM exposition built from Tests/Fixtures/metrics/vllm-0.33.prom
// (its rank series repeated with new rank labels); the driver to .build/release/libEngineVLLM.so.
// Prints the median time of each step per iteration, the MB/s over the input, and a digest of
// the output (it must not change when the code is only made faster).
import Crypto
import FoundationEssentials
import Host
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    let line = Array("metrics-bench: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, _ arguments: inout [String]) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    defer { arguments.removeSubrange(index...(index + 1)) }
    return arguments[index + 1]
}
let driverPath = option("--driver", &arguments) ?? ".build/release/libEngineVLLM.so"
let iterations = max(1, Int(option("--iterations", &arguments) ?? "30") ?? 30)

func readFile(_ path: String) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        fail("cannot read \(path)")
        exit(2)
    }
    return Array(data)
}

/// The fixture grown to about 2 MB: every sample line with a `dp_rank`-free label set is kept
/// once; rank-labelled lines are repeated for ranks 100, 101, ... (new series, as a larger
/// data-parallel deployment exposes).
func grownFixture() -> [UInt8] {
    let base = String(decoding: readFile("Tests/Fixtures/metrics/vllm-0.33.prom"), as: UTF8.self)
    let lines = base.split(separator: "\n", omittingEmptySubsequences: false)
    var out = base
    var rank = 100
    while out.utf8.count < 2_000_000 {
        for line in lines where !line.hasPrefix("#") && line.contains("engine=\"") {
            out += line.replacing(#/engine="(\d+)"/#, with: { _ in "engine=\"\(rank)\"" }) + "\n"
        }
        rank += 1
    }
    return Array(out.utf8)
}

let exposition = arguments.first.map(readFile) ?? grownFixture()
let rules: [MetricRule]
switch DriverLoader.load(path: driverPath) {
case .success(let driver): rules = driver.metricRules
case .failure(let failure):
    fail("cannot load \(driverPath): \(failure)")
    exit(2)
}
let hotPath = MetricsHotPath(rules: rules)
var samples: [MetricsHotPath.Timing] = []
var previous: ByteBuffer? = nil
var arrays = PrometheusExposition.Storage()
var output: [UInt8] = []
for iteration in 0...iterations {  // the first is a warm-up
    var timing = hotPath.run(exposition, reusing: &previous, arrays: &arrays)
    if output.isEmpty { output = Array(timing.output.readableBytesView) }
    previous = timing.output
    timing.output = ByteBuffer()
    if iteration > 0 { samples.append(timing) }
}

func median(_ values: [UInt64]) -> Double { Double(values.sorted()[values.count / 2]) / 1e6 }
let parse = median(samples.map(\.parse))
let standardize = median(samples.map(\.standardize))
let writeStandard = median(samples.map(\.writeStandard))
let writeOriginals = median(samples.map(\.writeOriginals))
let total = median(samples.map { $0.parse + $0.standardize + $0.writeStandard + $0.writeOriginals })
let digest = SHA256.hash(data: output).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined().prefix(16)
func ms(_ value: Double) -> String { String(Double(Int((value * 100).rounded())) / 100) }
print("input \(exposition.count) bytes, \(rules.count) rules; output \(output.count) bytes, sha256 \(digest)")
print(
    "median of \(iterations): parse \(ms(parse)) ms, standardize \(ms(standardize)) ms, write standard \(ms(writeStandard)) ms, "
        + "write originals \(ms(writeOriginals)) ms; total \(ms(total)) ms (\(Int(Double(exposition.count) / 1e6 / (total / 1000))) MB/s)")
