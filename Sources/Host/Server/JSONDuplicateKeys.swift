/// Finds a key that appears twice in one object of a well-formed JSON text. The decoder keeps
/// the last of duplicates silently, so `{"lora_name":"a","lora_name":"b"}` would mean whatever
/// the last proxy in the chain read; the API refuses it instead.
enum JSONDuplicateKeys {
    /// The first duplicated key, or nil. `bytes` must already be valid JSON.
    static func first(in bytes: [UInt8]) -> String? {
        // One frame per open container: the keys seen (objects only).
        var frames: [Set<String>?] = []
        var expectingKey = false
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "{"):
                frames.append([])
                expectingKey = true
            case UInt8(ascii: "["):
                frames.append(nil)
                expectingKey = false
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                frames.removeLast()
                expectingKey = false
            case UInt8(ascii: ","):
                expectingKey = frames.last.map { $0 != nil } ?? false
            case UInt8(ascii: "\""):
                let start = index
                var escaped = false
                index += 1
                while index < bytes.count {
                    if bytes[index] == UInt8(ascii: "\\") {
                        escaped = true
                        index += 2
                        continue
                    }
                    if bytes[index] == UInt8(ascii: "\"") { break }
                    index += 1
                }
                if expectingKey {
                    let token = bytes[start...min(index, bytes.count - 1)]
                    // Escapes spell the same key many ways ("a" and "\u0061"): compare decoded.
                    let key = escaped ? (try? JSONCoding.decode(String.self, from: token)) ?? "" : String(decoding: token.dropFirst().dropLast(), as: UTF8.self)
                    if frames[frames.count - 1]!.insert(key).inserted == false { return key }
                    expectingKey = false
                }
            default:
                break
            }
            index += 1
        }
        return nil
    }
}
