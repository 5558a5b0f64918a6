// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "slipway",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "slipway", targets: ["slipway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // Debian's libgit2 and libyaml, linked as shared system libraries (security updates come from apt).
        .systemLibrary(name: "CGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        .systemLibrary(name: "CLibYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // posix_spawn with setsid, chdir and closefrom: hidden from Swift's Glibc module.
        .target(name: "CSpawn", cSettings: [.define("_GNU_SOURCE")]),
        // The version `slipway --version` prints, stamped with the package's by packaging/build-deb.
        .target(name: "CVersionStamp"),

        // Pure: schema, validation, naming, retention, planning. No I/O.
        .target(name: "SlipwayCore", dependencies: [
            "CLibYAML",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Effects: git, filesystem, processes, the reconcile loop.
        .target(name: "Slipway", dependencies: [
            "SlipwayCore", "CGit2", "CLibYAML", "CSpawn",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // libFuzzer targets for every parser of hostile input (scripts/fuzz); a replayer otherwise.
        .executableTarget(name: "slipway-fuzz", dependencies: ["SlipwayCore"]),
        .executableTarget(name: "slipway", dependencies: [
            "Slipway", "SlipwayCore", "CVersionStamp",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Loopback ports for the tests' servers, shared by the two targets that start servers.
        .target(name: "LoopbackPorts", path: "Tests/LoopbackPorts"),
        .testTarget(name: "SlipwayCoreTests", dependencies: [
            "SlipwayCore", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "SlipwayTests", dependencies: [
            "Slipway", "SlipwayCore", "LoopbackPorts",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "slipway", "SlipwayCore", "CSpawn", "LoopbackPorts", .product(name: "Crypto", package: "swift-crypto"),
        ], exclude: ["Support/loadgen.py", "Support/readerloop.py", "Support/wsclient.js", "Support/tinyworker.py"]),
    ]
)
