"""Who may do what: dashboard users (argon2 password hashes, roles), TOTP codes for live actions, and
the dashboard's sessions. Imports only ``core`` and its libraries, so the worker, the CLI and the
dashboard share it; it never imports ``ui``."""
