"""The command-line commands, one module each. They build on the library modules
(engine, checks, report, ...) and never on each other or on `cli`, which assembles them."""
