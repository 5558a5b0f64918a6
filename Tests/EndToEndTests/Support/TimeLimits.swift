import Testing

extension Trait where Self == TimeLimitTrait {
    /// The time limit of every end-to-end suite. Swift Testing starts a test's clock when it
    /// starts the test, and these tests are synchronous: each body then waits for one of the
    /// cooperative pool's threads, which are as many as the cores (two here and in CI). A test
    /// can wait most of the end-to-end run (about 11 minutes in CI) before its body runs, so a
    /// limit below the whole run's length fails tests that never hung (BrokenYAMLTests, 0.7 s
    /// alone, did so in CI at 5 minutes). Each test bounds its own waits (process timeouts,
    /// `waitUntil` deadlines); this limit only ends a hang.
    static var endToEnd: Self { .timeLimit(.minutes(30)) }
}
