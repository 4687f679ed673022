// The regression benchmark of the /metrics hot path alone, bytes in, bytes out: parse,
// standardize with a driver's real rules, write the standard set and the originals.
//
//   swift run -c release metrics-bench [EXPOSITION] [--driver PATH.so] [--iterations N]
//
// EXPOSITION defaults to a 2 MB vLLM exposition built from Tests/Fixtures/metrics/vllm-0.33.prom
// (its rank series repeated with new rank labels); the driver to .build/release/libEngineVLLM.so.
// Renders three scrapes in turn, the exposition and two with every value new (the same series):
// each parsed and standardized in full, then each read as the last with new values (after
// checking that this gives what the full parse gives); then the same text again and again, as
// an idle engine's scrapes are. Prints the median time of each
// step per render, the MB/s over the input, and a digest of the exposition's output (it must
// not change when the code is only made faster).
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

/// The exposition with every sample's value replaced (`value * factor + 1`, so lengths change
/// and every later offset moves): what the next scrape of a running engine looks like.
func withNewValues(_ text: [UInt8], factor: Double) -> [UInt8] {
    let parsed = PrometheusExposition(bytes: text)
    var out: [UInt8] = []
    out.reserveCapacity(text.count + text.count / 10)
    var position = 0
    for sample in parsed.samples {
        out += text[position..<sample.valueText.lowerBound]
        let value = sample.value.isFinite ? sample.value * factor + 1 : sample.value
        out += Array((value == value.rounded() && abs(value) < 1e15 ? "\(Int64(value))" : "\(value)").utf8)
        position = sample.valueText.upperBound
    }
    out += text[position...]
    return out
}
// A running engine's scrapes: the same series, new values each time.
let scrapes = [exposition, withNewValues(exposition, factor: 3), withNewValues(exposition, factor: 0.5)]

/// `iterations` renders over `scrapes` in turn (the first a warm-up); `fresh`: each parsed and
/// standardized in full, as when the engine's series changed since the last scrape.
func measure(_ scrapes: [[UInt8]], fresh: Bool) -> [MetricsHotPath.Timing] {
    var timings: [MetricsHotPath.Timing] = []
    var previous: ByteBuffer? = nil
    var memory = MetricsHotPath.Memory()
    for iteration in 0...iterations {
        if fresh { memory.forgetShape() }
        var timing = hotPath.run(scrapes[iteration % scrapes.count], reusing: &previous, memory: &memory)
        if iteration > 0 && timing.reparsed == fresh { fail("run \(iteration) was \(fresh ? "reparsed" : "parsed in full")") }
        previous = timing.output
        timing.output = ByteBuffer()
        if iteration > 0 { timings.append(timing) }
    }
    return timings
}

/// The output of each scrape read as the next of the others must be what a full parse gives.
func render(_ text: [UInt8], after earlier: [UInt8]?) -> [UInt8] {
    var previous: ByteBuffer? = nil
    var memory = MetricsHotPath.Memory()
    if let earlier { _ = hotPath.run(earlier, reusing: &previous, memory: &memory) }
    previous = nil
    return Array(hotPath.run(text, reusing: &previous, memory: &memory).output.readableBytesView)
}
let output = render(exposition, after: nil)
for (index, scrape) in scrapes.enumerated() {
    let full = render(scrape, after: nil)
    let reparsed = render(scrape, after: scrapes[(index + 1) % scrapes.count])
    if full != reparsed { fail("scrape \(index) read after another of the same shape differs from its full parse") }
}

func median(_ values: [UInt64]) -> Double { Double(values.sorted()[values.count / 2]) / 1e6 }
func ms(_ value: Double) -> String { String(Double(Int((value * 100).rounded())) / 100) }
let digest = SHA256.hash(data: output).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined().prefix(16)
print("input \(exposition.count) bytes, \(rules.count) rules; output \(output.count) bytes, sha256 \(digest)")
// An idle engine's scrapes: the same bytes (in two buffers, as two scrapes are).
let idle = [exposition, Array(exposition)]
for (label, texts, fresh) in [
    ("new shape (full parse)", scrapes, true), ("same shape, every value new", scrapes, false), ("same shape, same values", idle, false),
] {
    let samples = measure(texts, fresh: fresh)
    let parse = median(samples.map(\.parse))
    let standardize = median(samples.map(\.standardize))
    let writeStandard = median(samples.map(\.writeStandard))
    let writeOriginals = median(samples.map(\.writeOriginals))
    let total = median(samples.map { $0.parse + $0.standardize + $0.writeStandard + $0.writeOriginals })
    print(
        "\(label), median of \(iterations): parse \(ms(parse)) ms, standardize \(ms(standardize)) ms, "
            + "write standard \(ms(writeStandard)) ms, write originals \(ms(writeOriginals)) ms; "
            + "total \(ms(total)) ms (\(Int(Double(exposition.count) / 1e6 / (total / 1000))) MB/s)")
}

/// What no /metrics path can go below, for `bench_metrics.py`'s limit of the uncached scrape:
/// every line found (memchr), every sample's last field read as a number (strtod), the text
/// copied once. Returns nanoseconds, and a sum of the values so the reads are not optimized away.
func floorNanoseconds(_ text: [UInt8], into copy: inout [UInt8]) -> (UInt64, Double) {
    let started = ContinuousClock.now
    var sum = 0.0
    text.withUnsafeBufferPointer { input in
        guard let base = input.baseAddress else { return }
        copy.withUnsafeMutableBufferPointer { output in _ = memcpy(output.baseAddress!, base, input.count) }
        var line = base
        let end = base + input.count
        while line < end {
            let newline = memchr(line, 0x0A, end - line).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) } ?? end
            if line.pointee != UInt8(ascii: "#"), newline > line, newline < end {
                // The value is the last field (values are short: a backward scan beats a call).
                var space = newline - 1
                while space > line, space.pointee != 0x20 { space -= 1 }
                sum += strtod(UnsafeRawPointer(space + 1).assumingMemoryBound(to: CChar.self), nil)
            }
            line = newline + 1
        }
    }
    let elapsed = ContinuousClock.now - started
    return (UInt64(elapsed.components.seconds) * 1_000_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000), sum)
}
var floorCopy = [UInt8](repeating: 0, count: exposition.count)
var floorSamples: [UInt64] = []
var floorSum = 0.0
for _ in 0...iterations {
    let (nanoseconds, sum) = floorNanoseconds(exposition, into: &floorCopy)
    floorSamples.append(nanoseconds)
    floorSum += sum
}
print("floor, median of \(iterations + 1): every line found, every value read, the text copied: \(ms(median(floorSamples))) ms (values sum \(floorSum.isFinite ? "finite" : "not finite"))")
