"""Talking to other sites: one guarded fetcher (``safe_fetch``) and what is built on it (brand colours)."""
