class Echo:
    def echo(self, value=None):
        """Synchronous and serialize: after a few fast runs the inline form runs it on the hub's
        loop directly (no thread hop, no task), so the figure is the reception and the engine."""
        return value
