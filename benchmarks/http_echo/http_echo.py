class Echo:
    async def echo(self, value=None):
        """Async, so it runs on the hub's loop (a sync inline operation hops to a thread
        unless it is serialize and proven fast): the figure is the reception and the engine."""
        return value
