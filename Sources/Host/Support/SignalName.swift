#if canImport(Glibc)
import Glibc
#endif

/// "SIGSEGV" for 11: the names of the signals that end a crashing process, for messages.
public enum SignalName {
    public static func of(_ signal: Int32) -> String {
        switch signal {
        case SIGSEGV: "SIGSEGV"
        case SIGABRT: "SIGABRT"
        case SIGBUS: "SIGBUS"
        case SIGILL: "SIGILL"
        case SIGFPE: "SIGFPE"
        case SIGKILL: "SIGKILL"
        case SIGTRAP: "SIGTRAP"
        case SIGTERM: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}
