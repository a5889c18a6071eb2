"""Executors: turn risk-approved orders into fills. ghost (hypothetical), paper (simulated venue)."""
