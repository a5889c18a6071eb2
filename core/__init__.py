"""Domain types shared by every layer: candles, signals, orders, fills, positions, trades, modes, states."""
