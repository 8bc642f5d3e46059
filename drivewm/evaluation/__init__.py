"""Evaluations of world models and agents (open loop here; relevance and closed loop beside it)."""
