"""One module per concern: envelope, ownership, freshness, provenance, signature, supersession, contract, conflicts."""
