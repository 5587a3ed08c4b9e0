class Echo:
    def echo(self, value=None):
        return value
