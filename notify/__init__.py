"""The notifier: its own process (``python -m notify``) that tells people what the worker did.

It reads the events stream (``state.events``) through a consumer group and sends each event to
the notification targets configured in the environment (apprise URLs: Telegram, Discord, Slack,
email, ntfy, JSON webhooks, ...), with a severity threshold per target, de-duplication, a rate
limit and retries; it also watches the worker's heartbeat, and, when a Telegram bot token is
given, answers chat commands (``notify.telegram``). Being another process, it can never slow the
worker. Its status is in one Redis key (``state.notifier_store``), shown on the dashboard.
"""
