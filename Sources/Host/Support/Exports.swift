// The ABI's Swift side (operations, statuses, capabilities, JSON values) is part of the host's
// public API: the CLI and tests name these types through `import Host`.
@_exported import DriverABI
