import ArgumentParser
import Foundation
import Slipway
import SlipwayCore

/// `--config FILE`, shared by every command that needs the agent's settings.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The agent's config file.", valueName: "file"))
    var config: String = AgentConfig.defaultPath

    /// Reads and validates the config; prints every problem and exits 2 when it is invalid.
    func load() throws -> AgentConfig {
        guard let data = FileManager.default.contents(atPath: config) else {
            throw CLIError("cannot read the config file \(config): \(FileManager.default.fileExists(atPath: config) ? "permission denied" : "no such file"); pass --config FILE", code: 2)
        }
        switch AgentConfig.decode(String(decoding: data, as: UTF8.self), file: config, hostname: ProcessInfo.processInfo.hostName) {
        case .success(let config):
            return config
        case .failure(let diagnostics):
            throw CLIError(diagnostics.description, code: 2)
        }
    }
}

extension AgentConfig {
    /// The state directory's lock, or a CLIError naming the agent that holds it.
    func acquireLock() throws -> AgentLock {
        do {
            return try AgentLock.acquire(stateDir: stateDir)
        } catch let held as AgentLock.Held {
            throw CLIError(held.description)
        }
    }
}

/// An error the CLI reports as-is (no stack, no type name) with its exit code.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    var code: Int32

    init(_ description: String, code: Int32 = 1) {
        self.description = description
        self.code = code
    }
}

extension ParsableCommand {
    /// Prints a CLIError to stderr and exits with its code; other errors go to ArgumentParser.
    static func reporting(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("slipway: \(error.description)\n".utf8))
            throw ExitCode(error.code)
        }
    }
}

extension AppName {
    /// An app named on the command line, or the error saying what a name may be.
    static func argument(_ text: String) throws -> AppName {
        guard let name = AppName(text) else {
            throw CLIError("'\(text)' is not a valid app name (1 to 63 of a-z, 0-9 and '-', starting with a letter or digit)")
        }
        return name
    }
}
