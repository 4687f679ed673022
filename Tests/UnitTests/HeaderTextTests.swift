@testable import Host
import Testing

/// Text checks every request passes through. (No Hummingbird or Foundation import here: both
/// have types that would shadow `RequestBody`.)
@Suite struct HeaderTextTests {
    @Test func whitespaceIsTrimmedAtBothEndsOnly() {
        #expect("  a b\t\r\n".trimmingWhitespace() == "a b")
        #expect("\r\n".trimmingWhitespace() == "")
        #expect("".trimmingWhitespace() == "")
        #expect(" é\u{301} ".trimmingWhitespace() == "é\u{301}", "multi-byte characters at the ends are kept whole")
        #expect("x".trimmingWhitespace() == "x")
        #expect(" key = value ".split(separator: "=")[1].trimmingWhitespace() == "value", "substrings too")
    }

    @Test func jsonContentTypesAreRecognisedWithParametersAndAnyCase() {
        #expect(RequestBody.isJSON("application/json"))
        #expect(RequestBody.isJSON(" Application/JSON ; charset=utf-8"))
        #expect(RequestBody.isJSON("application/merge-patch+json"))
        #expect(!RequestBody.isJSON("text/plain; application/json"))
        #expect(!RequestBody.isJSON("application/jsonp"))
        #expect(!RequestBody.isJSON(""))
    }
}
