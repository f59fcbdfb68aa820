"""Pure logic and process plumbing: configuration, logging, validation, start-up, CLI."""
