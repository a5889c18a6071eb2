"""Risk: limits checked before every order, trading-state precedence, decisions with their numbers."""
