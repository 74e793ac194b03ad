"""Run a bridge stand-in exactly as ``python -m bridge.standins ...``, minus its GC pauses.

The stand-ins record every call they take (params, headers, posts), so during a benchmark their
heap grows by a few objects per message, and CPython's full collections walk all of it: with
50,000 recorded posts a pause reaches 100-150 ms, which would show up as *the bridge's* (or the
relay's) latency.  The stand-in is the measuring instrument here, not the system under test, so
this wrapper freezes what has been allocated every half second (``gc.freeze()``): the recorded
history is left out of later collections, while short-lived garbage (a request's cycles) is
still collected by the young generations before it could be frozen.

    python -m bench.standin slack --port 0 --token ''
"""

from __future__ import annotations

import gc
import sys
import threading
import time

from bridge.standins.__main__ import main

FREEZE_EVERY = 0.5


def _freeze_forever() -> None:
    while True:
        time.sleep(FREEZE_EVERY)
        gc.freeze()


if __name__ == "__main__":
    threading.Thread(target=_freeze_forever, name="gc-freeze", daemon=True).start()
    main(sys.argv[1:])
