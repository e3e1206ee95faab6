"""Budgets: calendar windows, the pure policy, the model cascade and the loop brake."""
