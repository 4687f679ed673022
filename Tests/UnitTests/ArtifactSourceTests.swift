import Foundation
import TestSupport
import Testing

@testable import Host

/// URI forms, settings from the environment, download roots and names from sources.
struct ArtifactSourceTests {
    @Test func uriForms() throws {
        #expect(try ArtifactSource.parse("hf://org/name") == .huggingFace(repository: "org/name", revision: nil))
        #expect(try ArtifactSource.parse("huggingface://org/name@v1.0") == .huggingFace(repository: "org/name", revision: "v1.0"))
        #expect(try ArtifactSource.parse("Qwen/Qwen2.5-0.5B") == .huggingFace(repository: "Qwen/Qwen2.5-0.5B", revision: nil))
        #expect(try ArtifactSource.parse("s3://b/k/") == .objectStore(.init(flavor: .s3, bucket: "b", key: "k/")))
        #expect(try ArtifactSource.parse("gs://b/k") == .objectStore(.init(flavor: .gcs, bucket: "b", key: "k")))
        #expect(try ArtifactSource.parse("gcs://b") == .objectStore(.init(flavor: .gcs, bucket: "b", key: "")))
        #expect(try ArtifactSource.parse("TOS://b/k") == .objectStore(.init(flavor: .tos, bucket: "b", key: "k")))
        #expect(try ArtifactSource.parse("https://h/x.bin?sig=1") == .http(url: "https://h/x.bin?sig=1"))
        #expect(try ArtifactSource.parse("file:///data/a") == .local(path: "/data/a"))
        #expect(try ArtifactSource.parse("/data/a") == .local(path: "/data/a"))
        #expect(try ArtifactSource.parse("hf://org/name").defaultName == "org/name")
        #expect(try ArtifactSource.parse("s3://b/models/llama/").defaultName == "llama")
        #expect(try ArtifactSource.parse("https://h/a/b.bin?x=1").defaultName == "b.bin")
        for bad in ["", "ftp://x/y", "org", "a/b/c", "hf://org/../x", "s3:///k", "/data/../etc", "https://user:pw@h/x", "hf://org/name@", "org/name\n"] {
            #expect(throws: RuntimeError.self, "\(bad)") { try ArtifactSource.parse(bad) }
        }
    }

    @Test func relativePathsThatEscapeAreRefused() {
        for bad in ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", ".cache/engine-runtime/manifest.json", ""] {
            #expect(throws: RuntimeError.self, "\(bad)") { try SafeRelativePath.check(bad, source: "key") }
        }
        for good in ["a", "a/b.safetensors", "..a", "a..b/c", ".gitattributes"] {
            #expect(throws: Never.self) { try SafeRelativePath.check(good, source: "key") }
        }
    }

    @Test func settingsFromTheEnvironmentAndOverrides() throws {
        let settings = try DownloadSettings.fromEnvironment([
            "DOWNLOADER_NUM_THREADS": "8", "DOWNLOADER_PART_CHUNKSIZE": "1048576", "DOWNLOADER_ALLOW_FILE_SUFFIX": " .json, .safetensors ",
            "HF_ENDPOINT": "mirror.example/", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "DOWNLOADER_FORCE_DOWNLOAD": "1",
        ])
        #expect(settings.numThreads == 8)
        #expect(settings.partChunkSize == 1 << 20)
        #expect(settings.allowFileSuffixes == [".json", ".safetensors"])
        #expect(settings.huggingFace.endpoint == "https://mirror.example")
        #expect(settings.s3.endpoint == "http://127.0.0.1:9000")
        #expect(settings.keeps("a/model.safetensors") && !settings.keeps("a/model.bin"))
        let source = try ArtifactSource.parse("s3://b/k")
        let narrowed = try settings.applying(extraConfig: ["num_threads": .integer(2), "force_download": .bool(false), "ak": .string("A"), "sk": .string("S")], to: source)
        #expect(narrowed.numThreads == 2)
        #expect(narrowed.forceDownload, "a request cannot turn the operator's force_download off")
        #expect(narrowed.s3.accessKey == "A" && narrowed.s3.secretKey == "S")
        #expect(throws: RuntimeError.self) { try DownloadSettings.fromEnvironment(["DOWNLOADER_NUM_THREADS": "0"]) }
        #expect(throws: RuntimeError.self) { try DownloadSettings.fromEnvironment(["DOWNLOADER_FORCE_DOWNLOAD": "maybe"]) }
        #expect(throws: RuntimeError.self) { try settings.applying(extraConfig: ["nope": .integer(1)], to: source) }
        #expect(throws: RuntimeError.self) { try settings.applying(credentials: ["huggingface_token": "t", "x": "y"], to: source) }
        #expect(throws: RuntimeError.self) { try settings.applying(extraConfig: ["ak": .string("A")], to: try ArtifactSource.parse("hf://o/n")) }
        let allowList = try DownloadSettings.fromEnvironment(["DOWNLOADER_ALLOWED_HOSTS": "127.0.0.1,.example.com"])
        #expect(throws: Never.self) { try allowList.checkHost(of: "https://cdn.example.com/x") }
        #expect(throws: Never.self) { try allowList.checkHost(of: "http://127.0.0.1:8080/x") }
        #expect(throws: RuntimeError.self) { try allowList.checkHost(of: "http://169.254.169.254/latest") }
        #expect(throws: RuntimeError.self) { try allowList.checkHost(of: "http://example.com.evil.net/") }
    }

    @Test func localDirectoriesStayInsideTheRoots() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let root = directory.path + "/models"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/escape", withDestinationPath: "/etc")
        let roots = ArtifactRoots(models: root, adapters: directory.path + "/adapters")
        #expect(try roots.check(root) == root)
        #expect(try roots.check(root + "/team/a/") == root + "/team/a")
        #expect(throws: RuntimeError.self) { try roots.check(root + "/../x") }
        #expect(throws: RuntimeError.self) { try roots.check(directory.path + "/modelsX") }
        #expect(throws: RuntimeError.self) { try roots.check("relative") }
        #expect(throws: RuntimeError.self, "a symbolic link out of the root") { try roots.check(root + "/escape/sub") }
        #expect(throws: RuntimeError.self) { try ArtifactTarget(localDir: root, modelName: "a/b/c") }
        #expect(throws: RuntimeError.self) { try ArtifactTarget(localDir: root, modelName: ".hidden") }
        #expect(try ArtifactTarget(localDir: root, modelName: "org/name").path == root + "/org/name")
    }

    @Test func listingXMLIsRead() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>true</IsTruncated>\
            <Contents><Key>a/b &amp; c.txt</Key><Size>12</Size><ETag>&quot;abc&quot;</ETag></Contents>\
            <Contents><Key>a/d&#x2F;e</Key><Size>0</Size></Contents><NextContinuationToken>tok+/=</NextContinuationToken></ListBucketResult>
            """
        let page = try ListBucketResult.parse(Array(xml.utf8))
        #expect(page.objects == [.init(key: "a/b & c.txt", size: 12, etag: "\"abc\""), .init(key: "a/d/e", size: 0, etag: nil)])
        #expect(page.isTruncated && page.nextToken == "tok+/=")
        #expect(throws: RuntimeError.self) { try ListBucketResult.parse(Array("<Error><Code>NoSuchBucket</Code></Error>".utf8)) }
    }
}
