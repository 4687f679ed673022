/// The release of this build of engine-runtime.
public enum EngineRuntimeVersion {
    public static let current = "0.1.0"
}
