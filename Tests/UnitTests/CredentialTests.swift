import CryptoExtras
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import Host

/// Credential renewal, the web-identity settings, service-account keys and the order the
/// sources are taken in. The exchanges themselves run against moto and a local token server
/// in CloudCredentialTests.
@Suite struct CredentialTests {
    /// A clock the test moves.
    final class Clock: Sendable {
        let time = Mutex(Date(timeIntervalSince1970: 1_000_000))
        func advance(_ seconds: TimeInterval) { time.withLock { $0 += seconds } }
        var now: Date { time.withLock { $0 } }
    }

    /// An issuer that hands out `bearer-N` tokens good for `lifetime` seconds, or fails.
    final class Issuer: Sendable {
        let calls = Mutex(0)
        let failing = Mutex(false)
        let clock: Clock
        let lifetime: TimeInterval
        init(clock: Clock, lifetime: TimeInterval) {
            self.clock = clock
            self.lifetime = lifetime
        }
        func fetch() throws(RuntimeError) -> IssuedCredential {
            let count = calls.withLock { $0 += 1; return $0 }
            if failing.withLock({ $0 }) { throw RuntimeError(.upstream, "issuer down") }
            return IssuedCredential(authorization: .bearer("bearer-\(count)"), expires: clock.now.addingTimeInterval(lifetime))
        }
    }

    static func source(_ issuer: Issuer, clock: Clock) -> RefreshingCredentials {
        RefreshingCredentials(description: "test", logger: .quiet, now: { clock.now }) { _ throws(RuntimeError) in try issuer.fetch() }
    }

    @Test func renewalTimeIsFiveMinutesOrAQuarterOfTheLifeBeforeExpiry() {
        let issued = Date(timeIntervalSince1970: 0)
        #expect(RefreshingCredentials.renewalTime(issued: issued, expires: issued + 3600) == issued + 3300)
        #expect(RefreshingCredentials.renewalTime(issued: issued, expires: issued + 900) == issued + 675)
        #expect(RefreshingCredentials.renewalTime(issued: issued, expires: issued + 2) == issued + 1.5)
        #expect(RefreshingCredentials.renewalTime(issued: issued, expires: issued - 5) == issued - 5, "an answer already expired is renewed at once")
    }

    @Test func credentialsAreReusedUntilTheyNearExpiryThenRenewed() throws {
        let clock = Clock()
        let issuer = Issuer(clock: clock, lifetime: 100)
        let source = Self.source(issuer, clock: clock)
        #expect(try source.authorization(isCancelled: { false }) == .bearer("bearer-1"))
        clock.advance(74)
        #expect(try source.authorization(isCancelled: { false }) == .bearer("bearer-1"))
        #expect(issuer.calls.withLock { $0 } == 1)
        clock.advance(2)  // 76 s of 100: past the last quarter
        #expect(try source.authorization(isCancelled: { false }) == .bearer("bearer-2"))
        #expect(issuer.calls.withLock { $0 } == 2)
    }

    @Test func aFailedRenewalKeepsCredentialsThatAreStillGoodAndWaitsBeforeTheNext() throws {
        let clock = Clock()
        let issuer = Issuer(clock: clock, lifetime: 100)
        let source = Self.source(issuer, clock: clock)
        _ = try source.authorization(isCancelled: { false })
        issuer.failing.withLock { $0 = true }
        clock.advance(80)
        #expect(try source.authorization(isCancelled: { false }) == .bearer("bearer-1"))
        #expect(try source.authorization(isCancelled: { false }) == .bearer("bearer-1"))
        #expect(issuer.calls.withLock { $0 } == 2, "one failed attempt, then a pause of \(RefreshingCredentials.retryDelay) s")
        clock.advance(RefreshingCredentials.retryDelay + 1)
        _ = try source.authorization(isCancelled: { false })
        #expect(issuer.calls.withLock { $0 } == 3)
        clock.advance(30)  // expired
        #expect(throws: RuntimeError.self) { try source.authorization(isCancelled: { false }) }
        issuer.failing.withLock { $0 = false }
        #expect(try source.authorization(isCancelled: { false }) == .bearer("bearer-5"))
    }

    @Test func concurrentRequestsShareOneRenewal() async throws {
        let clock = Clock()
        let issuer = Issuer(clock: clock, lifetime: 100)
        let source = RefreshingCredentials(description: "test", logger: .quiet, now: { clock.now }) { _ throws(RuntimeError) in
            Thread.sleep(forTimeInterval: 0.05)  // an issuer round trip
            return try issuer.fetch()
        }
        let threads = (0..<8).map { _ in
            Thread { _ = try? source.authorization(isCancelled: { false }) }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(issuer.calls.withLock { $0 } == 1)
    }

    static func environment(_ values: [String: String]) -> (String) -> String? { { values[$0] } }

    @Test func webIdentitySettingsTakeTheSTSEndpointInAWSsOrder() throws {
        let base = ["AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"]
        let regional = try #require(try WebIdentitySettings.fromEnvironment(Self.environment(base), region: "eu-west-1"))
        #expect(regional.stsEndpoint == "https://sts.eu-west-1.amazonaws.com")
        #expect(regional.sessionName == nil && regional.durationSeconds == nil)
        let general = try #require(
            try WebIdentitySettings.fromEnvironment(Self.environment(base.merging(["AWS_ENDPOINT_URL": "http://127.0.0.1:5000/"]) { $1 }), region: ""))
        #expect(general.stsEndpoint == "http://127.0.0.1:5000")
        let specific = try #require(
            try WebIdentitySettings.fromEnvironment(
                Self.environment(base.merging(["AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_STS": "https://sts.example"]) { $1 }), region: ""))
        #expect(specific.stsEndpoint == "https://sts.example")
        #expect(try WebIdentitySettings.fromEnvironment(Self.environment([:]), region: "") == nil)
        for broken in [
            ["AWS_ROLE_ARN": "arn:aws:iam::1:role/r"], ["AWS_WEB_IDENTITY_TOKEN_FILE": "/t"],
            base.merging(["AWS_WEB_IDENTITY_TOKEN_FILE": "relative/token"]) { $1 }, base.merging(["AWS_ROLE_ARN": "model-reader"]) { $1 },
            base.merging(["AWS_ROLE_SESSION_NAME": "has space"]) { $1 }, base.merging(["DOWNLOADER_STS_DURATION_SECONDS": "0"]) { $1 },
        ] {
            #expect(throws: RuntimeError.self, "\(broken)") { try WebIdentitySettings.fromEnvironment(Self.environment(broken), region: "") }
        }
    }

    @Test func stsExpirationsParseWithAndWithoutFractions() {
        #expect(WebIdentityExchange.date("2026-12-02T04:00:00Z") == Date(timeIntervalSince1970: 1_796_184_000))
        #expect(WebIdentityExchange.date("2026-12-02T04:00:00.250Z") == Date(timeIntervalSince1970: 1_796_184_000.25))
        #expect(WebIdentityExchange.date("tomorrow") == nil)
    }

    static func keyJSON(tokenURI: String = "https://oauth2.googleapis.com/token") throws -> String {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let fields = ["type": "service_account", "client_email": "reader@p.iam.gserviceaccount.com", "private_key": key.pemRepresentation,
                      "private_key_id": "k1", "token_uri": tokenURI]
        return String(decoding: try JSONSerialization.data(withJSONObject: fields), as: UTF8.self)
    }

    @Test func serviceAccountAssertionsAreRS256JWTsForTheTokenEndpoint() throws {
        let pem = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let json = try JSONSerialization.data(withJSONObject: [
            "type": "service_account", "client_email": "reader@p.iam.gserviceaccount.com", "private_key": pem.pemRepresentation, "private_key_id": "k1",
        ])
        let key = try GoogleServiceAccountKey(json: Array(json))
        #expect(key.tokenURI == "https://oauth2.googleapis.com/token", "Google's endpoint when the key names none")
        let jwt = try key.assertion(now: Date(timeIntervalSince1970: 1_000))
        let parts = jwt.split(separator: ".").map(String.init)
        try #require(parts.count == 3)
        func decoded(_ text: String) throws -> [String: Any] {
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while base64.count % 4 != 0 { base64 += "=" }
            let data = try #require(Data(base64Encoded: base64))
            return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
        let header = try decoded(parts[0])
        #expect(header["alg"] as? String == "RS256" && header["kid"] as? String == "k1")
        let claims = try decoded(parts[1])
        #expect(claims["iss"] as? String == "reader@p.iam.gserviceaccount.com")
        #expect(claims["aud"] as? String == "https://oauth2.googleapis.com/token")
        #expect(claims["scope"] as? String == GoogleServiceAccountKey.scope)
        #expect(claims["iat"] as? Int == 1_000 && claims["exp"] as? Int == 4_600)
        var signature = parts[2].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while signature.count % 4 != 0 { signature += "=" }
        let signatureBytes = try #require(Data(base64Encoded: signature))
        let valid = pem.publicKey.isValidSignature(
            _RSA.Signing.RSASignature(rawRepresentation: signatureBytes), for: Data((parts[0] + "." + parts[1]).utf8),
            padding: .insecurePKCS1v1_5)
        #expect(valid)
    }

    @Test func badServiceAccountKeysAreTheRequestsError() throws {
        let gcs = try ArtifactSource.parse("gcs://bucket/adapter")
        for (json, message) in [
            ("not json", "not a JSON object"), (#"{"type":"authorized_user"}"#, "service_account"),
            (#"{"client_email":"a@b"}"#, "private_key"), (#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}"#, "PEM RSA key"),
        ] {
            #expect {
                try DownloadSettings().applying(credentials: ["gcp_service_account_json": json], to: gcs)
            } throws: { ($0 as? RuntimeError)?.kind == .invalidArgument && ($0 as? RuntimeError)?.message.contains(message) == true }
        }
        #expect(throws: RuntimeError.self) {
            try DownloadSettings().applying(credentials: ["gcp_service_account_json": try Self.keyJSON()], to: try ArtifactSource.parse("s3://bucket/adapter"))
        }
    }

    @Test func sourcesTakeExplicitKeysFirstAndBoundARequestsTokenEndpoint() throws {
        let sources = CredentialSources(http: CurlHTTPClient(), logger: .quiet)
        var s3 = DownloadSettings().s3
        s3.webIdentity = WebIdentitySettings(tokenFile: "/t", roleARN: "arn:aws:iam::1:role/r", sessionName: nil, stsEndpoint: "http://127.0.0.1:9", durationSeconds: nil)
        #expect(try sources.source(for: .s3, s3, allowedHosts: HostAllowList([])).description.hasPrefix("web identity"))
        s3.accessKey = "AKIA"
        s3.secretKey = "secret"
        let keyed = try sources.source(for: .s3, s3, allowedHosts: HostAllowList([]))
        #expect(try keyed.authorization(isCancelled: { false }).signing?.accessKey == "AKIA", "keys win over web identity, as in AWS's SDKs")
        #expect(try sources.source(for: .s3, DownloadSettings().s3, allowedHosts: HostAllowList([])).authorization(isCancelled: { false }) == .anonymous)

        let gcs = try ArtifactSource.parse("gcs://bucket/adapter")
        var settings = DownloadSettings()
        settings.gcs.accessKey = "HMAC"
        settings.gcs.secretKey = "secret"
        settings = try settings.applying(credentials: ["gcp_service_account_json": try Self.keyJSON(tokenURI: "http://10.0.0.1/token")], to: gcs)
        #expect(settings.gcs.accessKey == nil, "a request's key replaces the environment's HMAC keys")
        #expect {
            try sources.source(for: .gcs, settings.gcs, allowedHosts: HostAllowList([".googleapis.com"]))
        } throws: { ($0 as? RuntimeError)?.kind == .permissionDenied }
        #expect(try sources.source(for: .gcs, settings.gcs, allowedHosts: HostAllowList([])).description.hasPrefix("GCS service account"))
    }
}
