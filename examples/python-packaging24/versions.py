"""Reports which major version of `packaging` this component was pinned to.

packaging 21 still parses anything (LegacyVersion); 22 and later refuse a
version string that is not PEP 440.  Two components, one hub, no clash.
"""

import packaging
from packaging.version import parse


class Versions:
    def version(self):
        return packaging.__version__

    def parse(self, text: str) -> dict:
        try:
            return {"ok": True, "type": type(parse(text)).__name__, "value": str(parse(text))}
        except Exception as exc:
            return {"ok": False, "type": type(exc).__name__, "error": str(exc)}
