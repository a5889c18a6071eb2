"""The state store: the only package that knows Redis key names (keys.py).

writer.py is the worker's side, reader.py the dashboard's, commands.py the command stream
both sides share. models.py holds the JSON shapes stored in Redis.
"""
