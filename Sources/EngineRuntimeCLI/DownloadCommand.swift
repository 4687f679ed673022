import ArgumentParser
import Host
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `engine-runtime download`: the AIBrix downloader's command line, on the runtime's
/// download stack (parallel, resumable, verified).
struct DownloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download a model or adapter into a local directory.",
        discussion: """
            Sources: hf://org/name, huggingface://org/name or org/name (HF_ENDPOINT, HF_TOKEN, \
            HF_REVISION or @revision); s3://bucket/key (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
            AWS_SESSION_TOKEN, or IRSA's AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN; AWS_REGION, \
            AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_STS); tos://bucket/key (TOS_ACCESS_KEY, \
            TOS_SECRET_KEY, TOS_ENDPOINT, TOS_REGION); gs:// or gcs://bucket/key (GCS_ACCESS_KEY_ID + \
            GCS_SECRET_ACCESS_KEY HMAC keys, or GOOGLE_APPLICATION_CREDENTIALS, or the metadata \
            server on Google's cloud / GCE_METADATA_HOST; GCS_ENDPOINT); http(s) URLs; local paths.

            The files land in LOCAL_DIR/MODEL_NAME, which appears only when every file is \
            complete and verified. An interrupted download resumes where it stopped when run \
            again. Tuning: DOWNLOADER_NUM_THREADS, DOWNLOADER_PART_THRESHOLD, \
            DOWNLOADER_PART_CHUNKSIZE, DOWNLOADER_ALLOW_FILE_SUFFIX, DOWNLOADER_FORCE_DOWNLOAD \
            (flags override them). Exit status 0 on success, 1 on failure, with one line saying why.
            """)

    @Option(name: .customLong("model-uri"), help: "What to download (see the forms above).")
    var modelURI: String

    @Option(name: .customLong("local-dir"), help: "Base directory (default: DOWNLOADER_LOCAL_DIR or /tmp/aibrix/models).")
    var localDir: String?

    @Option(name: .customLong("model-name"), help: "Directory name under --local-dir (default: org/name for Hugging Face, else the last path segment).")
    var modelName: String?

    @Option(name: .customLong("num-threads"), help: "Transfers in flight at once (DOWNLOADER_NUM_THREADS, default 32).")
    var numThreads: Int?

    @Option(name: .customLong("part-threshold"), help: "Bytes from which a file is fetched in ranged parts (DOWNLOADER_PART_THRESHOLD, default 64 MiB).")
    var partThreshold: Int64?

    @Option(name: .customLong("part-chunksize"), help: "Bytes per ranged part (DOWNLOADER_PART_CHUNKSIZE, default 64 MiB).")
    var partChunkSize: Int64?

    @Option(name: .customLong("allow-file-suffix"), help: "Comma-separated suffixes of the files to keep (DOWNLOADER_ALLOW_FILE_SUFFIX).")
    var allowFileSuffix: String?

    @Flag(name: .customLong("force-download"), help: "Download again even when the target is complete (DOWNLOADER_FORCE_DOWNLOAD).")
    var forceDownload = false

    @Option(name: .customLong("download-extra-config"), help: "JSON object of AIBrix download_extra_config keys (num_threads, hf_token, ak, sk, endpoint ...).")
    var extraConfig: String?

    @Flag(name: .customLong("enable-progress-bar"), help: "Accepted for AIBrix compatibility; a progress bar is drawn whenever stderr is a terminal.")
    var enableProgressBar = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        // A write past RLIMIT_FSIZE must be an error to report, not a signal that kills.
        signal(SIGXFSZ, SIG_IGN)
        let logger = try logging.makeLogger()
        let environment = Settings.environmentDictionary()
        let job: DownloadJob
        do throws(RuntimeError) {
            let source = try ArtifactSource.parse(modelURI)
            var overrides: [String: JSONValue] = [:]
            if let extraConfig {
                guard let object = try? JSONCoding.decode([String: JSONValue].self, from: Array(extraConfig.utf8)) else {
                    throw RuntimeError(.invalidArgument, "--download-extra-config must be a JSON object")
                }
                overrides = object
            }
            // Flags win over --download-extra-config, which wins over the environment; one
            // validation for all three.
            if let numThreads { overrides["num_threads"] = .integer(Int64(numThreads)) }
            if let partThreshold { overrides["part_threshold"] = .integer(partThreshold) }
            if let partChunkSize { overrides["part_chunksize"] = .integer(partChunkSize) }
            if let allowFileSuffix { overrides["allow_file_suffix"] = .string(allowFileSuffix) }
            if forceDownload { overrides["force_download"] = .bool(true) }
            let settings = try DownloadSettings.fromEnvironment(environment).applying(extraConfig: overrides, to: source)
            var roots = try ArtifactRoots.fromEnvironment(environment)
            let directory = localDir ?? roots.models
            guard let normalized = ArtifactRoots.absolute(directory, base: Settings.currentDirectory()) else {
                throw RuntimeError(.invalidArgument, "--local-dir must not contain '..'")
            }
            // On the command line the operator chooses the directory: it becomes a root.
            roots.extra.append(normalized)
            let manager = DownloadManager(settings: settings, roots: roots, logger: logger, maximumConcurrentJobs: 1)
            job = try manager.start(.init(uri: modelURI, localDir: normalized, modelName: modelName, settings: settings))
            let display = ProgressDisplay(job: job, isTerminal: isatty(STDERR_FILENO) == 1)
            let result = await display.follow()
            switch result {
            case .success(let target):
                let snapshot = job.snapshot
                print(target.path)
                FileHandleError.write(display.summary(snapshot))
            case .failure(let error):
                throw error
            }
        } catch {
            FileHandleError.write("error: \(error.message)")
            throw ExitCode.failure
        }
    }
}

/// Draws a progress bar on a terminal, or writes a line every five seconds otherwise.
struct ProgressDisplay {
    let job: DownloadJob
    let isTerminal: Bool
    let started = ContinuousClock.now

    func follow() async -> Result<ArtifactTarget, RuntimeError> {
        let isTerminal = self.isTerminal
        let display = self
        // The display runs beside the download and stops the moment it ends.
        let printer = Task {
            // Without a terminal: a line every five seconds, the first after five seconds.
            var nextLine = display.started + .seconds(5)
            while !Task.isCancelled {
                let snapshot = display.job.snapshot
                if isTerminal {
                    FileHandleError.writeRaw("\r\u{1B}[K" + display.bar(snapshot))
                } else if ContinuousClock.now >= nextLine, snapshot.files_total > 0 {
                    nextLine = ContinuousClock.now + .seconds(5)
                    FileHandleError.write(display.line(snapshot))
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        let result = await job.wait()
        printer.cancel()
        await printer.value
        if isTerminal { FileHandleError.writeRaw("\r\u{1B}[K") }
        return result
    }

    private func fraction(_ snapshot: DownloadJob.Snapshot) -> Double {
        snapshot.bytes_total > 0 ? min(1, Double(snapshot.bytes_done) / Double(snapshot.bytes_total)) : 0
    }

    func bar(_ snapshot: DownloadJob.Snapshot) -> String {
        let width = 30
        let filled = Int(fraction(snapshot) * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        return "[\(bar)] \(Int(fraction(snapshot) * 100))% \(Self.bytes(snapshot.bytes_done))/\(Self.bytes(snapshot.bytes_total)) "
            + "\(snapshot.files_done)/\(snapshot.files_total) files \(Self.bytes(snapshot.bytes_per_second))/s \(snapshot.state.rawValue)"
    }

    func line(_ snapshot: DownloadJob.Snapshot) -> String {
        "download \(snapshot.id) \(snapshot.state.rawValue): \(Int(fraction(snapshot) * 100))% "
            + "(\(Self.bytes(snapshot.bytes_done)) of \(Self.bytes(snapshot.bytes_total)), \(snapshot.files_done)/\(snapshot.files_total) files, "
            + "\(Self.bytes(snapshot.bytes_per_second))/s)"
    }

    func summary(_ snapshot: DownloadJob.Snapshot) -> String {
        "downloaded \(snapshot.source) to \(snapshot.local_path): \(snapshot.files_total) files, \(Self.bytes(snapshot.bytes_total))"
    }

    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : "\(Double(Int(value * 10)) / 10) \(units[unit])"
    }
}

enum FileHandleError {
    static func write(_ line: String) { writeRaw(line + "\n") }
    static func writeRaw(_ text: String) {
        var bytes = Array(text.utf8)
        _ = Glibc.write(STDERR_FILENO, &bytes, bytes.count)
    }
}

