import PluginABI

/// The JSON operations of the driver ABI (`ert_operations`).
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

    /// Operations that change engine state; the host serializes them per instance.
    public var isMutating: Bool {
        switch self {
        case .loadLoRAAdapter, .unloadLoRAAdapter, .loadModel, .unloadModel, .sleep, .wake, .resetCache:
            true
        case .health, .readiness, .engineInfo, .listModels, .metrics:
            false
        }
    }

    /// True when the operation answers JSON (metrics answers Prometheus text).
    public var answersJSON: Bool { self != .metrics }

    /// The entry of `table` for this operation (nil when unsupported).
    func function(in table: ert_operations) -> ert_operation_fn? {
        switch self {
        case .health: table.health
        case .readiness: table.readiness
        case .engineInfo: table.engine_info
        case .listModels: table.list_models
        case .loadLoRAAdapter: table.load_lora_adapter
        case .unloadLoRAAdapter: table.unload_lora_adapter
        case .loadModel: table.load_model
        case .unloadModel: table.unload_model
        case .sleep: table.sleep
        case .wake: table.wake
        case .resetCache: table.reset_cache
        case .metrics: table.metrics
        }
    }
}

/// Capability flags of a driver (`ERT_CAP_*`).
public struct DriverCapabilities: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let multiInstance = DriverCapabilities(rawValue: 1 << 0)
    public static let serializeAll = DriverCapabilities(rawValue: 1 << 1)
    public static let loraDynamic = DriverCapabilities(rawValue: 1 << 2)
    public static let sleep = DriverCapabilities(rawValue: 1 << 3)
    public static let deepHealth = DriverCapabilities(rawValue: 1 << 4)
    public static let prometheus = DriverCapabilities(rawValue: 1 << 5)

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
