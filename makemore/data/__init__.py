"""Data: a text file -> items -> vocabulary -> seeded split -> context or sequence examples -> loaders."""
