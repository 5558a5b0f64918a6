import Foundation
import Testing
import SlipwayCore

/// Every input in fuzz/corpus (the fuzzers' seeds and whatever a run found and was kept) goes
/// through its parser again: a finding, once fixed, stays fixed.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz/corpus").path

    func inputs(_ target: String) -> [[UInt8]] {
        let directory = Self.corpus + "/" + target
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().compactMap { FileManager.default.contents(atPath: directory + "/" + $0).map { Array($0) } }
    }

    @Test func everyTargetHasSeeds() {
        for target in ["manifest", "agent-config", "sshsig", "notify", "env-file", "allowed-signers"] {
            #expect(!inputs(target).isEmpty, "no seeds for \(target)")
        }
    }

    @Test func theCorpusParsesWithoutCrashing() {
        for input in inputs("manifest") { _ = ManifestDecoder.decode(String(decoding: input, as: UTF8.self), file: "m.yaml") }
        for input in inputs("agent-config") { _ = AgentConfig.decode(String(decoding: input, as: UTF8.self), file: "a.yaml", hostname: "h") }
        for input in inputs("sshsig") {
            _ = try? SSHSignature.parse(armored: String(decoding: input, as: UTF8.self))
            _ = try? SSHSignature.parse(blob: input)
        }
        for input in inputs("env-file") { _ = EnvFile.parse(String(decoding: input, as: UTF8.self)) }
        for input in inputs("allowed-signers") { _ = AllowedSigners.parse(String(decoding: input, as: UTF8.self), file: "s") }
        for input in inputs("notify") {
            _ = NotifyAuth.verify(body: input, timestamp: "1", signature: "sha256=00", secret: [1], now: 1)
        }
    }

    /// The seeds are real inputs: the valid ones decode (a seed that silently stopped parsing
    /// would leave the fuzzer starting from nothing).
    @Test func theValidSeedsDecode() throws {
        let config = try #require(FileManager.default.contents(atPath: Self.corpus + "/agent-config/full.yaml"))
        guard case .success = AgentConfig.decode(String(decoding: config, as: UTF8.self), file: "full.yaml", hostname: "h") else {
            Issue.record("fuzz/corpus/agent-config/full.yaml does not decode")
            return
        }
        let signature = try #require(FileManager.default.contents(atPath: Self.corpus + "/sshsig/seed.sig"))
        #expect((try? SSHSignature.parse(armored: String(decoding: signature, as: UTF8.self))) != nil)
    }
}
