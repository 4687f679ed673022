import Foundation
@testable import Host
import TestSupport
import Testing

/// The download API's policy on a real DownloadManager in a scratch directory, with local
/// sources inside the roots (no network).
@Suite struct DownloadPolicyTests {
    struct Scratch {
        let directory: TemporaryDirectory
        let downloads: DownloadManager
        var models: String { directory.path + "/models" }

        init() throws {
            directory = try TemporaryDirectory()
            downloads = DownloadManager(
                settings: DownloadSettings(), roots: ArtifactRoots(models: directory.path + "/models", adapters: directory.path + "/adapters"),
                logger: .quiet)
        }

        /// A source directory under the models root holding one file.
        func source(_ name: String, content: String) throws -> String {
            let path = models + "/sources/" + name
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try content.write(toFile: path + "/weights.bin", atomically: true, encoding: .utf8)
            return path
        }

        /// Requests a download and waits for its job.
        func download(_ uri: String, as name: String) async throws -> DownloadManager.Outcome {
            let outcome = try await downloads.request(uri, localDir: nil, modelName: name, extraConfig: [:])
            if let id = outcome.jobID { _ = try await downloads.requireJob(id).wait().get() }
            return outcome
        }

        func cleanUp() async {
            await downloads.shutdown()
            directory.remove()
        }
    }

    @Test func theLongestValidNamesDownload() async throws {
        let scratch = try Scratch()
        let source = try scratch.source("long", content: "abc")
        let name = String(repeating: "o", count: 127) + "/" + String(repeating: "n", count: 127)
        do {
            _ = try await scratch.download(source, as: name)
            #expect(try String(contentsOfFile: scratch.models + "/" + name + "/weights.bin", encoding: .utf8) == "abc")
            let lora = String(repeating: "a", count: 253)
            _ = try await scratch.download(source, as: lora)
            #expect(FileManager.default.fileExists(atPath: scratch.models + "/" + lora + "/weights.bin"))
        } catch {
            Issue.record("a valid name failed: \(error)")
        }
        await scratch.cleanUp()
    }

    @Test func anotherSourceForAPublishedTargetIsAConflict() async throws {
        let scratch = try Scratch()
        let first = try scratch.source("first", content: "one")
        let second = try scratch.source("second", content: "two")
        _ = try await scratch.download(first, as: "model")
        let again = try await scratch.download(first, as: "model")
        #expect(again.status == .downloaded, "the same source again is answered at once")
        #expect(again.jobID == nil)
        do {
            _ = try await scratch.download(second, as: "model")
            Issue.record("another source was answered for a published target")
        } catch let error as RuntimeError {
            #expect(error.kind == .conflict)
            #expect(error.message.contains("already holds \(first)"))
        }
        #expect(try String(contentsOfFile: scratch.models + "/model/weights.bin", encoding: .utf8) == "one", "nothing was replaced")
        await scratch.cleanUp()
    }

    @Test func aLinkInsideARootCannotCarryADownloadOut() async throws {
        let scratch = try Scratch()
        let outside = try TemporaryDirectory()
        let source = try scratch.source("src", content: "abc")
        try FileManager.default.createSymbolicLink(atPath: scratch.models + "/evilorg", withDestinationPath: outside.path)
        do {
            _ = try await scratch.download(source, as: "evilorg/x")
            Issue.record("a download went through the link")
        } catch let error as RuntimeError {
            #expect(error.kind == .permissionDenied)
            #expect(error.message.contains("symbolic link"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty, "nothing was written outside")
        // The working directory beside the artifacts is checked too.
        let other = scratch.directory.path + "/models/team"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: other + "/.engine-runtime", withDestinationPath: outside.path)
        do throws(RuntimeError) {
            _ = try await scratch.downloads.request(source, localDir: other, modelName: "y", extraConfig: [:])
            Issue.record("the working directory went through the link")
        } catch {
            #expect(error.kind == .permissionDenied)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty)
        outside.remove()
        await scratch.cleanUp()
    }

    @Test func aDirectoryTheRuntimeDidNotCreateIsNeverReplaced() async throws {
        let scratch = try Scratch()
        let source = try scratch.source("src", content: "downloaded")
        let own = scratch.models + "/operator-model"
        try FileManager.default.createDirectory(atPath: own, withIntermediateDirectories: true)
        try "operator's weights".write(toFile: own + "/weights.safetensors", atomically: true, encoding: .utf8)
        for force in [false, true] {
            do throws(RuntimeError) {
                _ = try await scratch.downloads.request(
                    source, localDir: nil, modelName: "operator-model", extraConfig: force ? ["force_download": .bool(true)] : [:])
                Issue.record("a download was started over the operator's directory (force \(force))")
            } catch {
                #expect(error.kind == .conflict)
                #expect(error.message.contains("was not downloaded by engine-runtime"))
            }
        }
        #expect(try String(contentsOfFile: own + "/weights.safetensors", encoding: .utf8) == "operator's weights")
        // An empty directory made ahead (a mount point) is filled.
        try FileManager.default.createDirectory(atPath: scratch.models + "/empty", withIntermediateDirectories: true)
        _ = try await scratch.download(source, as: "empty")
        #expect(try String(contentsOfFile: scratch.models + "/empty/weights.bin", encoding: .utf8) == "downloaded")
        await scratch.cleanUp()
    }

    @Test func longKeysAreCutAndHashedShortOnesKept() throws {
        let short = try ArtifactTarget(localDir: "/m", modelName: "org/name")
        #expect(short.key == "org+name")
        let a = try ArtifactTarget(localDir: "/m", modelName: String(repeating: "o", count: 127) + "/" + String(repeating: "n", count: 127))
        let b = try ArtifactTarget(localDir: "/m", modelName: String(repeating: "o", count: 127) + "/" + String(repeating: "n", count: 126) + "m")
        #expect(a.key.utf8.count <= ArtifactTarget.longestKey)
        #expect(a.key != b.key)
        #expect((a.lockPath.split(separator: "/").last?.utf8.count ?? 999) < 255)
    }
}
