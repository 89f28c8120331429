"""Freshguard at the edges: LangChain, OpenAI and lineage standards. Each module imports the public API only."""
