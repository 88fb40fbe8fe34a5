"""Search a knowledge base: hybrid/semantic/keyword retrieval, quote lookup, citations."""

from .api import MODES, check_query, search
from .cite import cite
from .quote import QuoteConfig, lookup_quote
from .retrieve import FusionConfig

__all__ = ["MODES", "FusionConfig", "QuoteConfig", "check_query", "cite", "lookup_quote", "search"]
