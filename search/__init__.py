"""The way out: retrieval, quote lookup, citations, browsing, study packs and their wording.

Front ends reach these through the façade, :mod:`yuanwen.library` (see ``docs/api.md``);
this package exports nothing itself.
"""
