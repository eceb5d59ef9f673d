"""Pure registry rules: no I/O, no web framework, no database driver."""
