"""Dashboard pieces: tabs (paper, ghost, live), the health badge, kill switches, charts.

ui/ reads through state.reader and writes only commands through state.commands; it never
talks to an exchange.
"""
