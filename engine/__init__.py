"""The engine: a Bot (strategy + risk + executor + portfolio) and the Worker that runs bots on a feed."""
