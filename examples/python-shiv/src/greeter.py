"""A greeter that formats with a vendored dependency (packaging)."""

import packaging
from packaging.version import Version


class Greeter:
    def __init__(self):
        self.greeted = []

    def greet(self, name):
        self.greeted.append(name)
        print(f"greeting {name}")  # captured: Outcome.stdout
        return f"hello, {name} (packaging {packaging.__version__})"

    def newest(self, versions):
        return str(max(Version(v) for v in versions))

    def history(self):
        return self.greeted
