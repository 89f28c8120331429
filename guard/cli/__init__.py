"""The `freshguard` command line: check a records file, validate and show a policy."""
