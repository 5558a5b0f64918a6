/// Decodes the `migrate` section.
enum MigrateDecoder {
    static let keys = ["expand", "contract", "check", "timeout", "hosts"]

    static func decode(_ node: YAMLNode, _ reader: FieldReader) -> Migrate? {
        guard let fields = reader.fields(of: node, named: "migrate", known: keys) else { return nil }
        var migrate = Migrate()
        migrate.expand = fields["expand"].flatMap { reader.nonEmptyString($0, "migrate.expand") }
        migrate.contract = fields["contract"].flatMap { reader.nonEmptyString($0, "migrate.contract") }
        migrate.check = fields["check"].flatMap { reader.nonEmptyString($0, "migrate.check") }
        if let timeout = fields["timeout"].flatMap({ reader.duration($0, "migrate.timeout", atLeast: .seconds(1)) }) {
            migrate.timeout = timeout
        }
        if let hostsNode = fields["hosts"], let list = reader.stringList(hostsNode, "migrate.hosts") {
            if list.isEmpty {
                reader.report("migrate.hosts is empty, so no host would run the migrations", at: hostsNode.mark,
                              hint: "name the host that migrates, like [web-1], or leave hosts out to migrate on every host")
            } else {
                migrate.hosts = list.map(\.0)
            }
        }
        if fields["expand"] == nil && fields["contract"] == nil {
            reader.report("migrate declares neither 'expand' nor 'contract'", at: node.mark,
                          hint: "add 'expand: ./migrate.sh expand' (run before the switch), 'contract: ...' (after), or remove 'migrate'")
        }
        if migrate.hosts != nil, migrate.expand != nil, migrate.check == nil, let hostsNode = fields["hosts"] {
            reader.report("migrate.hosts leaves other hosts to wait for the expand, but no migrate.check tells them when it is done",
                          at: hostsNode.mark,
                          hint: "add 'check: ./migrate.sh check', a command that exits 0 once this release's schema exists")
        }
        if migrate.check != nil, migrate.hosts == nil, let checkNode = fields["check"] {
            reader.report("migrate.check is only run on hosts left out of migrate.hosts, and there is no migrate.hosts",
                          at: checkNode.mark, hint: "add 'hosts: [web-1]' to migrate on one host only, or remove 'check'")
        }
        return migrate
    }
}
