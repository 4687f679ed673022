import HTTPTypes
import Hummingbird
import NIOCore

/// Builds JSON responses from values or from bytes a driver already encoded.
enum JSONResponse {
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        raw(try JSONCoding.encode(value), status: status)
    }

    static func raw(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
