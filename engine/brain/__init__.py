"""Brains: the rule brain, LLM brains, personas, the prompt and the decision cache."""
