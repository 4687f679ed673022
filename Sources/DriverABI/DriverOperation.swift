import PluginABI

/// The JSON operations of the driver ABI, in `ert_operations` order. The raw value is the
/// operation's name in the API, logs and `drivers check`.
public enum DriverOperation: String, Sendable, CaseIterable, Codable {
    case health
    case readiness
    case engineInfo = "engine_info"
    case listModels = "list_models"
    case loadLoRAAdapter = "load_lora_adapter"
    case unloadLoRAAdapter = "unload_lora_adapter"
    case loadModel = "load_model"
    case unloadModel = "unload_model"
    case sleep
    case wake
    case resetCache = "reset_cache"
    case metrics
    // ABI 1.2
    case pause
    case resume
    case reloadWeights = "reload_weights"

    /// Operations that change engine state; the host serializes them per instance.
    public var isMutating: Bool {
        switch self {
        case .loadLoRAAdapter, .unloadLoRAAdapter, .loadModel, .unloadModel, .sleep, .wake, .resetCache, .pause, .resume,
            .reloadWeights:
            true
        case .health, .readiness, .engineInfo, .listModels, .metrics:
            false
        }
    }

    /// True when the operation answers JSON (metrics answers Prometheus text).
    public var answersJSON: Bool { self != .metrics }

    /// The entry of `table` for this operation (nil when unsupported).
    public func function(in table: ert_operations) -> ert_operation_fn? {
        table[keyPath: field]
    }

    /// Sets the entry of `table` for this operation.
    public func set(_ function: ert_operation_fn?, in table: inout ert_operations) {
        table[keyPath: field] = function
    }

    private var field: WritableKeyPath<ert_operations, ert_operation_fn?> {
        switch self {
        case .health: \.health
        case .readiness: \.readiness
        case .engineInfo: \.engine_info
        case .listModels: \.list_models
        case .loadLoRAAdapter: \.load_lora_adapter
        case .unloadLoRAAdapter: \.unload_lora_adapter
        case .loadModel: \.load_model
        case .unloadModel: \.unload_model
        case .sleep: \.sleep
        case .wake: \.wake
        case .resetCache: \.reset_cache
        case .metrics: \.metrics
        case .pause: \.pause
        case .resume: \.resume
        case .reloadWeights: \.reload_weights
        }
    }
}

/// Capability flags of a driver, from the header's `ERT_CAP_*` bits.
public struct DriverCapabilities: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let multiInstance = DriverCapabilities(rawValue: UInt64(ERT_CAP_MULTI_INSTANCE))
    public static let serializeAll = DriverCapabilities(rawValue: UInt64(ERT_CAP_SERIALIZE_ALL))
    public static let loraDynamic = DriverCapabilities(rawValue: UInt64(ERT_CAP_LORA_DYNAMIC))
    public static let sleep = DriverCapabilities(rawValue: UInt64(ERT_CAP_SLEEP))
    public static let deepHealth = DriverCapabilities(rawValue: UInt64(ERT_CAP_DEEP_HEALTH))
    public static let prometheus = DriverCapabilities(rawValue: UInt64(ERT_CAP_PROMETHEUS))

    /// Names used in JSON and on the command line, in bit order.
    public static let names: [(DriverCapabilities, String)] = [
        (.multiInstance, "multi_instance"), (.serializeAll, "serialize_all"),
        (.loraDynamic, "lora_dynamic"), (.sleep, "sleep"), (.deepHealth, "deep_health"),
        (.prometheus, "prometheus"),
    ]

    /// The names of the set bits; unknown bits are listed as `bit<N>`.
    public var names: [String] {
        var result: [String] = []
        for bit in 0..<64 where rawValue & (1 << UInt64(bit)) != 0 {
            let flag = DriverCapabilities(rawValue: 1 << UInt64(bit))
            result.append(Self.names.first { $0.0 == flag }?.1 ?? "bit\(bit)")
        }
        return result
    }
}
