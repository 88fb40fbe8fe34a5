"""Benchmarks and the retrieval evaluation of 原文 (see docs/benchmarks.md, docs/search.md)."""
