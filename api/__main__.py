"""`python -m api hash < key.txt`: the SHA-256 of an API key and a ready-to-paste keys-file entry."""

from api.keys import hash_main

raise SystemExit(hash_main())
