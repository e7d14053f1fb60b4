"""Order entry: adapters that turn client messages into engine commands, and the ``cx`` command line."""
